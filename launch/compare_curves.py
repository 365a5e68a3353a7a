#!/usr/bin/env python3
"""Compare the learning curves of two runs (e.g. model.precision f32 and bf16 from the same seed).

    compare_curves.py A/metrics.jsonl B/metrics.jsonl --warmup N [--window W] [--tol 0.02]
                      [--acc-tol 0.01] [--labels f32,bf16] [--title T] [--png OUT.png] [--also-from S]

Both runs see the same batches in the same order (same seed, same data), so their training losses
are compared step by step at the steps both logged: after warm-up (steps > N), the largest
relative difference |a - b| / a of the loss as logged (one step's batch) and of its running mean
over W logged points (default 5; the per-step noise of one batch is the same in both runs, the
mean shows the trend). The last evaluation line of each run gives the final validation loss and
accuracy (for mqar, the far-recall accuracy: its val split counts only far recalls).
Exits 1 if the running-mean difference exceeds --tol or the final accuracies differ by more than
--acc-tol (absolute, 0.01 = 1 point); prints every figure either way. With --png, draws both
curves (raw and running mean) and the relative difference (matplotlib; /usr/bin/python3).
"""
import argparse
import json
import sys


def load(path):
    train, evals = {}, []
    for line in open(path):
        r = json.loads(line)
        if "split" in r:
            evals.append(r)
        elif "tokens_per_s" in r:
            train[r["step"]] = r["loss"]
    return train, evals


def running_mean(xs, w):
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= w:
            acc -= xs[i - w]
        out.append(acc / min(i + 1, w))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--warmup", type=int, required=True, help="compare only steps after this one")
    ap.add_argument("--window", type=int, default=5, help="running mean over this many logged points")
    ap.add_argument("--tol", type=float, default=0.02, help="largest relative difference of the running mean")
    ap.add_argument("--acc-tol", type=float, default=0.01, help="largest final accuracy difference (absolute)")
    ap.add_argument("--labels", default="f32,bf16")
    ap.add_argument("--title", default="")
    ap.add_argument("--png", default="")
    ap.add_argument("--also-from", type=int, default=0,
                    help="also print the running-mean difference after this step (e.g. after a phase change)")
    a = ap.parse_args()
    la, lb = a.labels.split(",")
    ta, ea = load(a.a)
    tb, eb = load(a.b)
    steps = sorted(set(ta) & set(tb))
    if not steps:
        sys.exit("no common logged steps")
    xa, xb = [ta[s] for s in steps], [tb[s] for s in steps]
    ma, mb = running_mean(xa, a.window), running_mean(xb, a.window)
    after = [i for i, s in enumerate(steps) if s > a.warmup]
    raw = max(abs(xa[i] - xb[i]) / abs(xa[i]) for i in after)
    raw_step = steps[max(after, key=lambda i: abs(xa[i] - xb[i]) / abs(xa[i]))]
    smooth = max(abs(ma[i] - mb[i]) / abs(ma[i]) for i in after)
    mean_raw = sum(abs(xa[i] - xb[i]) / abs(xa[i]) for i in after) / len(after)
    print(f"{a.title or a.a}: {len(steps)} common logged steps ({steps[0]}..{steps[-1]}), {len(after)} after warm-up {a.warmup}")
    print(f"  loss as logged: max rel diff {raw:.4f} (step {raw_step}), mean {mean_raw:.4f}")
    print(f"  running mean over {a.window} points: max rel diff {smooth:.4f} (criterion <= {a.tol})")
    if a.also_from:
        late = [i for i, s in enumerate(steps) if s > a.also_from]
        if late:
            m = max(abs(ma[i] - mb[i]) / abs(ma[i]) for i in late)
            print(f"  running mean after step {a.also_from}: max rel diff {m:.4f}")
    print(f"  last logged loss: {la} {xa[-1]:.4f}, {lb} {xb[-1]:.4f}")
    ok = smooth <= a.tol
    if ea and eb:
        fa, fb = ea[-1], eb[-1]
        d = abs(fa["accuracy"] - fb["accuracy"])
        print(f"  final eval (step {fa['step']} / {fb['step']}): loss {la} {fa['loss']:.4f} {lb} {fb['loss']:.4f}; "
              f"accuracy {la} {100 * fa['accuracy']:.2f}% {lb} {100 * fb['accuracy']:.2f}% "
              f"(diff {100 * d:.2f} points, criterion <= {100 * a.acc_tol:.1f})")
        common = sorted(set(r["step"] for r in ea) & set(r["step"] for r in eb))
        acc_a = {r["step"]: r["accuracy"] for r in ea}
        acc_b = {r["step"]: r["accuracy"] for r in eb}
        print("  eval accuracy by step: " + ", ".join(f"{s}: {100 * acc_a[s]:.1f}/{100 * acc_b[s]:.1f}" for s in common))
        ok = ok and d <= a.acc_tol
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (p1, p2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        p1.plot(steps, xa, color="C0", alpha=0.25, lw=0.8)
        p1.plot(steps, xb, color="C1", alpha=0.25, lw=0.8)
        p1.plot(steps, ma, color="C0", label=f"{la} (running mean of {a.window})")
        p1.plot(steps, mb, color="C1", ls="--", label=f"{lb} (running mean of {a.window})")
        p1.axvline(a.warmup, color="gray", lw=0.5)
        p1.set_ylabel("training loss")
        p1.legend()
        p1.set_title(a.title)
        p2.plot(steps, [100 * (mb[i] - ma[i]) / ma[i] for i in range(len(steps))], color="C2")
        p2.axhline(0, color="gray", lw=0.5)
        p2.set_ylabel(f"{lb} vs {la}, %")
        p2.set_xlabel("step")
        fig.tight_layout()
        fig.savefig(a.png, dpi=100)
        print(f"  wrote {a.png}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
