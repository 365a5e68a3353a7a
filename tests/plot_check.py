#!/usr/bin/python3
"""Checks a figure of launch/plot.py against the runs it was drawn from.

    plot_check.py PNG LABEL=RUN_DIR...

Reads the runs' metrics.jsonl here, independently of launch/plot.py (plain json, no shared code),
and checks that PNG is a valid PNG whose "Panels" text names exactly the panels these runs need and
whose "Series" text (read back by plot.py from the figure's lines) has, for every run under its
LABEL, in every panel, each series with the number of points and the last point the metrics give:
training lines, validation points, one line per layer of code perplexity, and a vertical line at
every restart. Also that the image is not blank (matplotlib reads it back). Prints ok/FAIL lines;
the exit code is the number of failures.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaling_check import png_chunks  # noqa: E402  (the tests' one PNG chunk reader)

LOSS = "task loss (lines: train, markers: validation)"
fails = 0


def check(name, ok):
    global fails
    print(("ok   " if ok else "FAIL ") + name)
    fails += not ok


def expected(run_dir):
    """{panel: {series: (points, last x, last y)}} of one run, from its metrics file."""
    train, evals, restarts = {}, [], []
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        if not line.endswith("\n"):
            continue  # a last line cut short: plot.py skips it
        r = json.loads(line)
        if "restart" in r:
            restarts.append((r["step"], r["restart"]))
        elif "split" in r:
            evals.append(r)
        elif "tokens_per_s" in r:
            train[r["step"]] = r
    steps = sorted(train)
    last = train[steps[-1]]
    lm = "bits_per_token" in last
    metric, key = ("bits per token", "bits_per_token") if lm else ("accuracy", "accuracy")
    out = {LOSS: {"train": (len(steps), steps[-1], last["task_loss"])},
           metric: {"train": (len(steps), steps[-1], last[key])},
           "learning rate": {"train": (len(steps), steps[-1], last["lr"])},
           "gradient norm": {"train": (len(steps), steps[-1], last["grad_norm"])},
           "tokens/s": {"train": (len(steps), steps[-1], last["tokens_per_s"])},
           "code perplexity per layer": {f"layer {i}": (len(steps), steps[-1], v)
                                         for i, v in enumerate(last["code_perplexity"])}}
    if evals:
        out[LOSS]["val"] = (len(evals), evals[-1]["step"], evals[-1]["loss"])
        out[metric]["val"] = (len(evals), evals[-1]["step"], evals[-1][key])
    for panel in out:
        for s, k in restarts:
            out[panel][f"restart {k}"] = (1, s, None)
    return out


def close(a, b):
    return a is None or b is None or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def main(argv):
    png, runs = argv[0], [a.split("=", 1) for a in argv[1:]]
    chunks = png_chunks(png)
    text = {k.decode(): v.decode("latin-1") for kind, data in chunks if kind == b"tEXt"
            for k, _, v in [data.partition(b"\0")]}
    w, h = int.from_bytes(chunks[0][1][:4], "big"), int.from_bytes(chunks[0][1][4:8], "big")
    check(f"{png}: a PNG ({w}x{h}, {os.path.getsize(png)} bytes)",
          chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND" and w >= 1000 and h >= 700)
    want = {label: expected(d) for label, d in runs}
    panels = [LOSS] + [p for p in ("bits per token", "accuracy") if any(p in e for e in want.values())] + \
             ["learning rate", "gradient norm", "tokens/s", "code perplexity per layer"]
    got_panels = text.get("Panels", "").split("\n")
    check(f"panels {got_panels}", got_panels == panels)
    series = json.loads(text.get("Series", "{}"))
    check(f"series drawn in every panel: {sorted(series)}", sorted(series) == sorted(panels))
    for label, exp in want.items():
        for panel, ss in exp.items():
            got = series.get(panel, {}).get(label, {})
            bad = [f"{s}: {got.get(s)} != {v}" for s, v in ss.items()
                   if s not in got or got[s][0] != v[0] or got[s][1] != v[1] or not close(got[s][2], v[2])]
            extra = sorted(set(got) - set(ss))
            check(f"{label} / {panel}: {sorted(ss)}" + (f" BAD {bad}" if bad else "") + (f" EXTRA {extra}" if extra else ""),
                  not bad and not extra)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    img = matplotlib.image.imread(png)
    check(f"the image reads back ({img.shape}) and is not blank", img.shape[0] == h and float(img.std()) > 0.01)
    return fails


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
