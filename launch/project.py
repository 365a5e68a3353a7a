#!/usr/bin/python3
"""Projects a LongVQ training step to 1..1024 nodes on a simulated cluster (SimGrid SMPI).

usage: /usr/bin/python3 launch/project.py PROFILE.json --out DIR [options]
       (launch/project.sh CONFIG ... runs `longvq profile` first, then this)

PROFILE.json is `longvq profile`'s step profile (format longvq-profile/1). For each node count the
step skeleton (launch/sim/skeleton.c, built by cmake -DLONGVQ_SIM=ON) runs under smpirun on a
generated platform, and DIR gets the scaling sweep's report: scaling.csv, scaling.md, scaling.png
(format longvq-scaling/1, launch/scaling_report.py, launcher "simgrid"), plus each point's plan,
platform, hostfile and output. docs/scaling.md#projections explains the model and every option.

  --network N          ib100 (fat tree, 100 Gb/s, full bisection), eth25 (25 Gb/s, 4:1 oversubscribed
                       fat tree) or machine (one host: this machine, see --loopback-*)
  --mode M             weak (per-rank batch fixed: the profile's) or strong (--global-batch at every point)
  --nodes LIST         node counts (default "1 2 4 8 16 32 64 128 256 512 1024")
  --ranks-per-node R   trainer ranks per node (default 1)
  --cores-per-node C   cores per node (default: R x the profile's threads, a node like the profiling
                       machine; threads per rank = C / R, see --thread-eff)
  --thread-eff E       parallel efficiency per doubling of threads (default 0.88, this machine 1 -> 2)
  --bucket-mb B        gradient bucket size (default: the profile's dist.bucket_mb)
  --micro-batches M    micro-batches per step (weak: each of the profile's size; default: the profile's)
  --global-batch G     strong mode: sequences per step (default 16 x the largest node count x R)
  --zero 0|1           ZeRO-1 (default: the profile's dist.zero)
  --compute-scale S    multiply the profile's compute times (default 1)
  --data-s S           data seconds per step (default 0: the profile reads no data)
  --loopback-gbs G, --loopback-lat-us L   memory-copy bandwidth (GB/s) and latency (us) of a node's
                       loopback (intra-node messages; default 10 GB/s, 1 us); --network machine uses them
                       as the machine itself
  --link-gbps X, --link-lat-us L   override the network's link bandwidth (Gb/s) and per-hop latency (us)
  --ring-sample K      simulate K steps of each ring beyond --ring-full-upto ranks (default 64), hold the
                       rest for as long (default 8; 0 = all; see launch/sim/skeleton.c)
  --collectives C      ring (default) or mpi (SMPI's own MPI_Reduce_scatter_block/MPI_Allgather)
  --timeout S          per point (default 1800)

Exit codes: 0 written; 1 a simulation failed; 2 bad usage.
"""
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling_report as sr  # noqa: E402  (one definition of the report format)

NETWORKS = {
    # per-link bandwidth, per-link latency, fat tree (levels;down;up;parallel): 32 x 32 = 1024 nodes
    "ib100": ("100Gbps", "0.5us", "2;32,32;1,32;1,1", "InfiniBand-HDR-like: 100 Gb/s links, 0.5 us per hop, full-bisection fat tree"),
    "eth25": ("25Gbps", "5us", "2;32,32;1,8;1,1", "Ethernet: 25 Gb/s links, 5 us per hop, 4:1 oversubscribed fat tree (8 uplinks per 32 nodes)"),
    # no switch hierarchy: every route is the sender's link up and the receiver's link down (the
    # textbook alpha-beta setting: alpha = 2 x link latency, beta = the link bandwidth)
    "flat": ("100Gbps", "0.5us", None, "flat: one 100 Gb/s, 0.5 us link per node, no contention"),
}
SMPI_CFG = ["--cfg=smpi/privatization:no", "--cfg=smpi/simulate-computation:no", "--cfg=network/model:CM02",
            "--cfg=smpi/shared-malloc:local", "--log=root.thres:warning"]


def die(msg, code=2):
    print(f"project: error: {msg}", file=sys.stderr)
    sys.exit(code)


def parse(argv):
    o = {"network": "ib100", "mode": "weak", "nodes": "1 2 4 8 16 32 64 128 256 512 1024", "ranks_per_node": 1,
         "cores_per_node": None, "thread_eff": 0.88, "bucket_mb": None, "micro_batches": None, "global_batch": None,
         "zero": None, "compute_scale": 1.0, "data_s": 0.0, "loopback_gbs": 10.0, "loopback_lat_us": 1.0,
         "ring_sample": 8, "ring_full_upto": 64, "collectives": "ring", "link_gbps": None, "link_lat_us": None, "timeout": 1800, "out": None, "profile": None}
    types = {"ranks_per_node": int, "cores_per_node": int, "thread_eff": float, "bucket_mb": float,
             "micro_batches": int, "global_batch": int, "zero": int, "compute_scale": float, "data_s": float,
             "loopback_gbs": float, "loopback_lat_us": float, "link_gbps": float, "link_lat_us": float, "ring_sample": int, "ring_full_upto": int, "timeout": float}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        if a.startswith("--"):
            k = a[2:].replace("-", "_")
            if k not in o or k == "profile":
                die(f"{a}: unknown option (see --help)")
            if i + 1 >= len(argv):
                die(f"{a}: needs a value")
            v = argv[i + 1]
            try:
                o[k] = types[k](v) if k in types else v
            except ValueError:
                die(f"{a} {v}: not a number")
            i += 2
        elif o["profile"] is None:
            o["profile"], i = a, i + 1
        else:
            die(f"{a}: unexpected argument (see --help)")
    if not o["profile"] or not o["out"]:
        die("usage: project.py PROFILE.json --out DIR [options] (--help)")
    if o["network"] not in NETWORKS and o["network"] != "machine":
        die(f"--network {o['network']}: must be ib100, eth25, flat or machine")
    if o["mode"] not in ("weak", "strong") or o["collectives"] not in ("ring", "mpi"):
        die("--mode must be weak or strong, --collectives ring or mpi")
    try:
        o["nodes"] = [int(x) for x in o["nodes"].split()]
    except ValueError:
        die(f"--nodes {o['nodes']}: not a list of integers")
    if not o["nodes"] or min(o["nodes"]) < 1 or max(o["nodes"]) > 1024 or o["ranks_per_node"] < 1:
        die("--nodes must be within 1..1024 and --ranks-per-node >= 1")
    if o["ring_sample"] == 1:
        die("--ring-sample must be 0 or >= 2")
    return o


def platform(o, path):
    R, C = o["ranks_per_node"], o["cores_per_node"]
    lb = f'loopback_bw="{o["loopback_gbs"]}GBps" loopback_lat="{o["loopback_lat_us"]}us"'
    if o["network"] == "machine":  # one host: every message is a memory copy
        body = (f'  <cluster id="m" prefix="node-" suffix="" radical="0-0" speed="1Gf" core="{C}" bw="{o["loopback_gbs"]}GBps" '
                f'lat="{o["loopback_lat_us"]}us" {lb}/>')
    else:
        bw, lat, topo, _ = NETWORKS[o["network"]]
        bw = f"{o['link_gbps']}Gbps" if o["link_gbps"] is not None else bw
        lat = f"{o['link_lat_us']}us" if o["link_lat_us"] is not None else lat
        tree = f'topology="FAT_TREE" topo_parameters="{topo}" ' if topo else ""
        body = (f'  <cluster id="c" prefix="node-" suffix="" radical="0-1023" speed="1Gf" core="{C}" bw="{bw}" lat="{lat}" '
                f'{tree}sharing_policy="SPLITDUPLEX" {lb}/>')
    with open(path, "w") as f:
        f.write("<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                f"<platform version=\"4.1\">\n  <!-- {R} trainer ranks per node: a compute and a communication actor each -->\n"
                f"{body}\n</platform>\n")


def thread_factor(o, prof):
    """Compute time of one rank at T = cores / ranks threads, relative to the profile's threads."""
    T = max(o["cores_per_node"] // o["ranks_per_node"], 1) if o["network"] != "machine" else prof["threads"]
    T0 = prof["threads"]
    return (T0 / T) / (o["thread_eff"] ** math.log2(T / T0)) if T != T0 else 1.0, T


def plan_for(o, prof, nodes):
    """The skeleton's plan for one point; returns (text, facts) or (None, why)."""
    R = o["ranks_per_node"]
    W = nodes * R
    b, tm, red = prof["batch"], prof["timing"], prof["reducer"]
    mb = b["micro_batch"]
    f, T = thread_factor(o, prof)
    f *= o["compute_scale"]
    if o["mode"] == "weak":
        n_micro = o["micro_batches"] or b["micro_batches"]
        seqs, scale = mb * n_micro, 1.0
    else:
        G = o["global_batch"] or 16 * max(o["nodes"]) * R
        if G % W:
            return None, f"global batch {G} does not divide over {W} ranks"
        seqs = G // W
        n_micro = max(1, math.ceil(seqs / mb))
        scale = seqs / (n_micro * mb)  # sequences per micro-batch / the profile's (compute ~ tokens)
    bucket_mb = o["bucket_mb"] if o["bucket_mb"] is not None else red["bucket_mb"]
    zero = o["zero"] if o["zero"] is not None else red["zero"]
    ev = prof["backward_events"]
    lines = [f"steps 1", f"n_micro {n_micro}", f"forward_s {tm['forward_s'] * f * scale:.9f}",
             f"backward_s {tm['backward_s'] * f * scale:.9f}", f"data_s {o['data_s']:.9f}",
             f"grad_norm_s {tm['grad_norm_s'] * f:.9f}", f"adamw_s {tm['adamw_s'] * f:.9f}",
             f"codebook_s {tm['codebook_s'] * f:.9f}", f"n_grad {red['n_grad']}", f"n_stat_base {red['n_stat_base']}",
             f"n_stat_per_rank {red['n_stat_per_rank']}", f"bucket_floats {int(bucket_mb * 1048576 / 4)}",
             f"zero {zero}", f"comm_thread {red['comm_thread']}", f"collectives {o['collectives']}",
             f"ring_sample {o['ring_sample'] if W > o['ring_full_upto'] else 0}"]
    lines += [f"event {e['t_s'] * f * scale:.9f} {e['lo']}" for e in ev]
    facts = {"W": W, "threads": T, "seqs": seqs, "n_micro": n_micro, "tokens": seqs * b["seq_len"] * W,
             "flops": prof["model"]["flops_per_micro_batch"] / mb * seqs * W}
    return "\n".join(lines) + "\n", facts


def run_point(o, prof, nodes, skeleton, smpirun):
    R, C = o["ranks_per_node"], o["cores_per_node"]
    label = f"{nodes}x{R}x{max(C // R, 1) if o['network'] != 'machine' else prof['threads']}"
    d = os.path.join(o["out"], label)
    os.makedirs(d, exist_ok=True)
    p = {"point": label, "run_dir": d, "status": "not-run", "error": "", "nodes": nodes, "ranks_per_node": R,
         "ranks": nodes * R, "cores_per_node": C}
    text, facts = plan_for(o, prof, nodes)
    if text is None:
        p.update(status="bad-input", error=facts)
        return p
    T = facts["threads"]
    p.update(threads=T, cores=nodes * R * T, oversubscribed=R * T > C, global_batch=facts["seqs"] * facts["W"],
             batch_per_rank=facts["seqs"])
    with open(os.path.join(d, "plan.txt"), "w") as f:
        f.write(text)
    platform(o, os.path.join(d, "platform.xml"))
    with open(os.path.join(d, "hostfile"), "w") as f:
        for n in range(nodes):
            f.write(f"node-{n}\n" * (2 * R))
    # SimGrid's cross-traffic models TCP's acknowledgements (a small reverse flow on every transfer,
    # about 5% of a full-duplex ring's bandwidth): on for TCP over Ethernet, off for InfiniBand, the
    # flat alpha-beta network and the machine's memory copies.
    xt = ["--cfg=network/crosstraffic:" + ("1" if o["network"] == "eth25" else "0")]
    # Open MPI's algorithm choices for --collectives mpi; SMPI's default otherwise (only the barrier,
    # the final max and the sampled ring's agreement use them: the ompi ones take 30x longer to
    # simulate at 256 ranks)
    if o["collectives"] == "mpi":
        xt.append("--cfg=smpi/coll-selector:ompi")
    cmd = [smpirun, "-np", str(2 * nodes * R), "-platform", "platform.xml", "-hostfile", "hostfile"] + SMPI_CFG + xt + \
          [skeleton, "plan.txt"]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=o["timeout"])
    except subprocess.TimeoutExpired:
        p.update(status="timeout", error=f"simulation longer than {o['timeout']} s")
        return p
    wall = time.time() - t0
    with open(os.path.join(d, "skeleton.out"), "w") as f:
        f.write(r.stdout)
    with open(os.path.join(d, "skeleton.err"), "w") as f:
        f.write(r.stderr)
    rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode or not rows:
        err = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        p.update(status="failed", exit_code=r.returncode, error=err)
        return p
    m = rows[-1]
    W = facts["W"]
    step = m["step_s"]
    p.update(status="ok", exit_code=0, sim_wall_s=wall, tokens_per_step=facts["tokens"],
             tokens_per_s=facts["tokens"] / step, step_s=step, step_s_median=step, step_s_max=m["slowest_step_s"],
             compute_s=m["compute_s"], comm_s=m["comm_s"], exposed_comm_s=m["exposed_comm_s"], data_s=m["data_s"],
             optimizer_s=m["optimizer_s"], comm_bytes=m["comm_bytes"], buckets=m["buckets"],
             hidden_share=1 - m["exposed_comm_s"] / m["comm_s"] if m["comm_s"] > 0 else None,
             busbw_gbs=m["comm_bytes"] * 2 * (W - 1) / W / m["comm_s"] * 1e-9 if m["comm_s"] > 0 else None,
             gflops=facts["flops"] / step * 1e-9)
    p["other_s"] = step - p["compute_s"] - p["exposed_comm_s"] - p["data_s"] - p["optimizer_s"]
    return p


def main(argv):
    o = parse(argv)
    try:
        with open(o["profile"]) as f:
            prof = json.load(f)
    except (OSError, ValueError) as e:
        die(f"{o['profile']}: cannot read the profile: {e}")
    if prof.get("format") != "longvq-profile/1":
        die(f"{o['profile']}: not a longvq-profile/1 file (longvq profile --out)")
    if o["cores_per_node"] is None:
        o["cores_per_node"] = o["ranks_per_node"] * prof["threads"]
    here = os.path.dirname(os.path.abspath(__file__))
    skeleton = os.path.abspath(os.environ.get("LONGVQ_SKELETON", os.path.join(here, "..", "build", "launch", "sim", "skeleton")))
    if not os.access(skeleton, os.X_OK):
        die(f"{skeleton}: no skeleton; build with cmake -DLONGVQ_SIM=ON (needs libsimgrid-dev: launch/install-deps.sh --sim)")
    smpirun = os.environ.get("SMPIRUN", "smpirun")
    if os.path.exists(o["out"]):
        die(f"--out {o['out']}: exists (a projection never overwrites another)")
    os.makedirs(o["out"])
    with open(os.path.join(o["out"], "profile.json"), "w") as f:
        json.dump(prof, f, indent=1)
    points = []
    for n in o["nodes"]:
        p = run_point(o, prof, n, skeleton, smpirun)
        points.append(p)
        print(f"project: {p['point']}: {p['status']}" + (f", step {p['step_s'] * 1e3:.2f} ms, exposed "
              f"{p['exposed_comm_s'] * 1e3:.2f} ms, simulated in {p['sim_wall_s']:.1f} s" if p["status"] == "ok"
              else f": {p['error']}"), flush=True)
    base = sr.add_efficiency(points)
    net = NETWORKS[o["network"]][3] if o["network"] != "machine" else \
        f"this machine: one host, {o['loopback_gbs']} GB/s, {o['loopback_lat_us']} us memory copies"
    bmb = o["bucket_mb"] if o["bucket_mb"] is not None else prof["reducer"]["bucket_mb"]
    sweep = {"mode": o["mode"], "launcher": "simgrid", "warmup": 0, "steps": 1, "config": prof["config"],
             "cores_per_node": o["cores_per_node"], "host": f"SMPI, {net}", "date": time.strftime("%Y-%m-%d"),
             "commit": prof.get("commit", "?"), "batch_per_rank": points[0].get("batch_per_rank"),
             "global_batch": o["global_batch"] or 16 * max(o["nodes"]) * o["ranks_per_node"],
             "overrides": f"network={o['network']} bucket_mb={bmb} micro_batches={o['micro_batches'] or prof['batch']['micro_batches']} "
                          f"ranks_per_node={o['ranks_per_node']} zero={o['zero'] if o['zero'] is not None else prof['reducer']['zero']}"}
    with open(os.path.join(o["out"], "projection.json"), "w") as f:
        json.dump({"options": o, "sweep": sweep, "points": points}, f, indent=1, default=str)
    out = {k: os.path.join(o["out"], f"scaling.{k}") for k in ("csv", "md", "png")}
    sr.write_csv(out["csv"], points, sweep)
    sr.write_md(out["md"], points, sweep, base)
    sr.plot(out["png"], points, sweep, base)
    print(f"project: wrote {out['csv']}, {out['md']}, {out['png']}")
    return 1 if any(p["status"] == "failed" for p in points) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
