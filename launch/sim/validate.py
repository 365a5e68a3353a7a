#!/usr/bin/python3
"""Simulated against measured: the second half of launch/sim/validate.sh (see there).

usage: /usr/bin/python3 launch/sim/validate.py DIR
DIR holds measured/ (a launch/scaling.sh weak sweep), profile_before.json, profile_after.json and
bench_allreduce.txt. Writes DIR/profile_mean.json, DIR/sim_<R>/ (launch/project.py on the one-host
`machine` platform) and DIR/check.md (the comparison table).
"""
import csv
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))


def mean_profile(a, b):
    """The two profiles' mean times (taken before and after the sweep: a shared machine drifts)."""
    m = json.loads(json.dumps(a))
    for k in m["timing"]:
        if k.endswith("_s"):
            m["timing"][k] = (a["timing"][k] + b["timing"][k]) / 2
    for ea, eb, em in zip(a["backward_events"], b["backward_events"], m["backward_events"]):
        em["t_s"] = (ea["t_s"] + eb["t_s"]) / 2
    return m


def machine_link(path):
    """Memory-copy bandwidth (GB/s, the bucketed path's bus bandwidth at the largest size) and latency
    (us: a tiny reduction at 2 ranks is 2 buckets x (reduce-scatter + all-gather) = 4 messages)."""
    rows = []
    for line in open(path):
        c = [x.strip() for x in line.split("|")]
        if len(c) == 4 and c[0].replace(".", "").isdigit():
            rows.append((float(c[0]), float(c[2].split("/")[1]), float(c[3])))
    if not rows:
        sys.exit(f"validate: {path}: no bench_allreduce rows")
    rows.sort()
    return rows[-1][1], rows[0][2] / 4


def main(d):
    prof = mean_profile(*(json.load(open(os.path.join(d, f"profile_{w}.json"))) for w in ("before", "after")))
    with open(os.path.join(d, "profile_mean.json"), "w") as f:
        json.dump(prof, f, indent=1)
    bw, lat = machine_link(os.path.join(d, "bench_allreduce.txt"))
    measured = {r["point"]: r for r in csv.DictReader(open(os.path.join(d, "measured", "scaling.csv")))}
    rows = []
    for point, r in measured.items():
        if r["status"] != "ok":
            rows.append((point, r, None))
            continue
        R = int(r["ranks"])
        sims = []
        # (a) the profile's compute, the 2 cores shared by the platform; (b) each run's own measured
        # compute (its metrics: what the machine gave each rank), one core per rank: the network and
        # overlap model alone
        t = prof["timing"]
        for tag, scale, cores in (("profile", 1.0, r["cores_per_node"]),
                                  ("metrics", float(r["compute_s"]) / (t["forward_s"] + t["backward_s"]), str(R))):
            out = os.path.join(d, f"sim_{tag}_{R}")
            subprocess.run([sys.executable, os.path.join(here, "..", "project.py"), os.path.join(d, "profile_mean.json"),
                            "--network", "machine", "--nodes", "1", "--ranks-per-node", str(R), "--cores-per-node",
                            cores, "--loopback-gbs", f"{bw}", "--loopback-lat-us", f"{lat}", "--compute-scale",
                            f"{scale}", "--data-s", r["data_s"], "--out", out], check=True, stdout=subprocess.DEVNULL)
            sims.append(next(csv.DictReader(open(os.path.join(out, "scaling.csv")))))
        rows.append((point, r, sims))
    ms = lambda v: f"{float(v) * 1e3:.2f}" if v not in ("", None) else ""
    L = [f"# Simulated against measured: `{prof['config']}`, weak, 16 sequences per rank, 1 thread per rank", "",
         f"Machine platform: one host of {rows[0][1]['cores_per_node']} cores, memory copies {bw:.2f} GB/s and "
         f"{lat:.1f} us per message (bench_allreduce at 2 ranks, {os.path.join(d, 'bench_allreduce.txt')}). Profile: mean of "
         f"the profiles before and after the sweep (forward {prof['timing']['forward_s'] * 1e3:.1f} ms, backward "
         f"{prof['timing']['backward_s'] * 1e3:.1f} ms per micro-batch of 16). Measured: mean of 10 timed steps, rank 0.", "",
         "compute: **profile** = the profile's times with the platform sharing the cores (the whole prediction); "
         "**metrics** = each run's own measured compute, one core per rank (the communication and overlap model "
         "alone). Load: profile load averages " + ", ".join(f"{p.get('load_avg', '?')}" for p in (prof,)) + "; "
         "background CPUs per point in measured/scaling.md.", "",
         "| point | compute from | measured step ms | simulated step ms | step error | measured exposed ms | simulated exposed ms | "
         "measured comm ms | simulated comm ms | measured compute ms | simulated compute ms | measured bytes | simulated bytes |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for point, r, sims in rows:
        if sims is None:
            L.append(f"| {point} | | {r['status']} | | | | | | | | | | |")
            continue
        for tag, s in zip(("profile", "metrics"), sims):
            err = (float(s["step_s"]) - float(r["step_s"])) / float(r["step_s"])
            L.append(f"| {point}{' (oversubscribed)' if r['oversubscribed'] == 'yes' else ''} | {tag} | {ms(r['step_s'])} | "
                     f"{ms(s['step_s'])} | {err * 100:+.1f}% | {ms(r['exposed_comm_s'])} | {ms(s['exposed_comm_s'])} | "
                     f"{ms(r['comm_s'])} | {ms(s['comm_s'])} | {ms(r['compute_s'])} | {ms(s['compute_s'])} | "
                     f"{float(r['comm_bytes'] or 0):.0f} | {float(s['comm_bytes'] or 0):.0f} |")
    with open(os.path.join(d, "check.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    main(sys.argv[1])
