#!/usr/bin/env python3
"""Compare the training trajectories (metrics.jsonl) of runs against a reference run.

    cmp_runs.py --steps N [--from S] [--tol T] REF_DIR RUN_DIR...

REF_DIR must hold the training lines of steps 1..N, every RUN_DIR exactly those of steps S..N (a
run resumed from the checkpoint of step S-1 holds only those). On every step, loss and grad_norm
must agree with the reference within T relative (default 1e-4: the multi-rank tolerance, argued
in tests/dist_train.sh and tests/dist_scale.sh). Prints the largest relative difference seen;
exits 1 naming the first run, step and figure outside the tolerance.
"""
import argparse
import json
import sys


def trajectory(run_dir):
    """step -> training line (evaluation lines carry "split" and no "tokens_per_s")."""
    lines = (json.loads(l) for l in open(run_dir + "/metrics.jsonl"))
    return {r["step"]: r for r in lines if "tokens_per_s" in r}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, required=True, help="the reference's last step")
    ap.add_argument("--from", dest="first", type=int, default=1, help="the runs' first step")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance")
    ap.add_argument("ref")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    ref = trajectory(a.ref)
    if sorted(ref) != list(range(1, a.steps + 1)):
        sys.exit(f"{a.ref}: steps {sorted(ref)}, expected 1..{a.steps}")
    worst = 0.0
    for d in a.runs:
        t = trajectory(d)
        if sorted(t) != list(range(a.first, a.steps + 1)):
            sys.exit(f"{d}: steps {sorted(t)}, expected {a.first}..{a.steps}")
        for s in sorted(t):
            for k in ("loss", "grad_norm"):
                x, y = ref[s][k], t[s][k]
                rel = abs(x - y) / max(abs(x), 1e-12)
                worst = max(worst, rel)
                if rel > a.tol:
                    sys.exit(f"{d} step {s} {k}: {y} vs {x} (rel {rel:.2e} > {a.tol:g})")
    print(f"max relative difference over {len(a.runs)} run(s): {worst:.2e}")


if __name__ == "__main__":
    main()
