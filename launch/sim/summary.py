#!/usr/bin/python3
"""One markdown table per projection of launch/sim/projections.sh: OUT/summary.md.

usage: /usr/bin/python3 launch/sim/summary.py OUT
Columns: nodes, ranks, step ms, compute ms, communication ms (all, overlapped), exposed ms, hidden
share, efficiency (against the projection's first point), hidden-step ratio ((step - exposed) / step:
the efficiency against the same step with its communication fully hidden, comparable across
settings), simulation wall seconds.
"""
import csv
import json
import os
import sys


def table(d):
    rows = list(csv.DictReader(open(os.path.join(d, "scaling.csv"))))
    pts = {p["point"]: p for p in json.load(open(os.path.join(d, "projection.json")))["points"]}
    f = lambda v, k=1e3, s=".1f": "" if v in ("", None) else format(float(v) * k, s)
    L = ["| nodes | ranks | global batch | step ms | compute ms | comm ms | exposed ms | hidden | efficiency | (step - exposed) / step | sim s |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            L.append(f"| {r['nodes']} | {r['ranks']} | | {r['status']}: {r['error']} | | | | | | | |")
            continue
        L.append(f"| {r['nodes']} | {r['ranks']} | {r['global_batch']} | {f(r['step_s'])} | {f(r['compute_s'])} | "
                 f"{f(r['comm_s'], s='.2f')} | {f(r['exposed_comm_s'], s='.2f')} | {f(r['hidden_share'], 100, '.0f')}"
                 f"{'%' if r['hidden_share'] else ''} | {f(r['efficiency'], 100, '.1f')}% | "
                 f"{(1 - float(r['exposed_comm_s']) / float(r['step_s'])) * 100:.1f}% | "
                 f"{pts[r['point']].get('sim_wall_s', 0):.1f} |")
    return L


def main(out):
    L = []
    for name in sorted(os.listdir(out)):
        d = os.path.join(out, name)
        if os.path.isfile(os.path.join(d, "scaling.csv")):
            o = json.load(open(os.path.join(d, "projection.json")))["sweep"]
            L += [f"### {name}", "", f"`{o['config']}`, {o['mode']}, {o['host']}; {o['overrides']}", ""] + table(d) + [""]
    open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    main(sys.argv[1])
