#!/usr/bin/env bash
# Installs the Debian 12 packages LongVQ needs. As root it runs apt-get; otherwise it prints the
# exact command to run and exits 1. Idempotent: does nothing when everything is present.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libopenmpi-dev openmpi-bin
      libdnnl-dev ocl-icd-opencl-dev
      libhdf5-openmpi-dev hdf5-tools zlib1g-dev
      libyaml-dev
      dataset-fashion-mnist python3-h5py python3-numpy python3-matplotlib
      slurm-wlm munge)
# --sim: SimGrid's SMPI (smpicc, smpirun) for the projections (cmake -DLONGVQ_SIM=ON, docs/scaling.md#projections)
[ "${1:-}" = "--sim" ] && PKGS+=(libsimgrid-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "longvq: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  $cmd" >&2
  exit 1
fi
echo "longvq: installing ${missing[*]}"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
