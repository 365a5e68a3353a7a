#!/usr/bin/python3
"""Plots the training curves of one or several LongVQ runs into one PNG (docs/plots.md).

usage: /usr/bin/python3 launch/plot.py RUN... --out F.png [--title TEXT]

RUN is a run directory (its metrics.jsonl), a metrics file, or a directory of run directories (a
sweep: launch/submit.sh --sweep, launch/scaling.sh): its subdirectories that hold a metrics.jsonl,
in name order. All runs share the axes (x = optimizer step); each run has one colour and a label:
its run.name, or its directory where names repeat (a sweep's array tasks).

Panels: task loss (lines: training; markers: validation), bits per token (LM runs) and/or accuracy
(classification runs), learning rate, gradient norm, tokens/s, code perplexity per layer. A resumed
run's restarts (its metrics.jsonl holds a restart line where it continued after step s) are dotted
vertical lines at s, in the run's colour, in every panel.

The PNG's text chunks describe what was drawn, for scripts and tests: "Panels" (the panel titles,
one per line) and "Series" (JSON: per panel, per run, each series with its point count and last
point, read back from the figure's lines).

Exit codes: 0 written (a last line cut short, a run stopped while writing it, is skipped with a
warning); 1 no plot (matplotlib missing, the PNG cannot be written); 2 bad usage or a bad metrics
file (FILE:LINE: what is wrong).
"""
import argparse
import json
import math
import os
import sys

import metrics_io  # launch/metrics_io.py, beside this script

PROG = "plot"
LOSS, BPT, ACC, LR, GNORM, TPS, PPL = ("task loss (lines: train, markers: validation)", "bits per token",
                                       "accuracy", "learning rate", "gradient norm", "tokens/s",
                                       "code perplexity per layer")


class Run:
    """One run's lines: training rows by step, evaluation rows, restarts (continued after step s)."""

    def __init__(self, path, shown):
        self.path, self.shown = path, shown  # metrics file; the argument (or sweep member) it came from
        self.name = None
        self.train, self.evals, self.restarts = {}, [], []
        self.label = None

    @property
    def lm(self):
        return any(r["metric"] == BPT for r in self.train.values())


def metric_of(obj, where, allow_null):
    """(panel, value) of a line's task metric: bits_per_token (LM) or accuracy."""
    for key, panel in (("bits_per_token", BPT), ("accuracy", ACC)):
        if key in obj:
            return panel, metrics_io.number(obj, key, where, allow_null=allow_null)
    raise metrics_io.MetricsError(f"{where}: neither 'bits_per_token' nor 'accuracy' in the line")


def nan(v):
    return math.nan if v is None else v


def load(path, shown):
    """A Run from a metrics file; MetricsError names the file and line of what is wrong."""
    run = Run(path, shown)
    warn = lambda m: print(f"{PROG}: warning: {m}", file=sys.stderr)
    for n, obj in metrics_io.read_objects(path, warn):
        kind, where = metrics_io.kind(obj), f"{path}:{n}"
        if kind is None:
            continue  # a kind of line this plot does not draw
        if isinstance(obj.get("run"), str):
            run.name = obj["run"]
        step = metrics_io.step_of(obj, where)
        if kind == "restart":
            run.restarts = [(s, k) for s, k in run.restarts if s < step]  # a resume from before undoes later ones
            run.restarts.append((step, int(metrics_io.number(obj, "restart", where))))
        elif kind == "eval":
            panel, value = metric_of(obj, where, True)
            run.evals.append({"step": step, "loss": nan(metrics_io.number(obj, "loss", where, allow_null=True)),
                              "metric": panel, "value": nan(value)})
        else:
            num = lambda k: nan(metrics_io.number(obj, k, where, allow_null=True))
            panel, value = metric_of(obj, where, True)
            ppl = obj.get("code_perplexity", [])
            if not isinstance(ppl, list) or any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))
                                                for v in ppl):
                raise metrics_io.MetricsError(f"{where}: field 'code_perplexity' is {ppl!r}, expected a list of numbers")
            run.train[step] = {"loss": num("task_loss" if "task_loss" in obj else "loss"), "metric": panel,
                               "value": nan(value), "lr": num("lr"), "grad_norm": num("grad_norm"),
                               "tokens_per_s": num("tokens_per_s"), "ppl": [nan(v) for v in ppl]}
    if not run.train:
        raise metrics_io.MetricsError(f"{path}: no training lines (a run that logged no step yet?)")
    return run


def expand(arg):
    """The metrics files an argument names: [(metrics file, shown name)]; MetricsError if none."""
    if os.path.isfile(arg):
        return [(arg, os.path.dirname(os.path.abspath(arg)))]
    if not os.path.isdir(arg):
        raise metrics_io.MetricsError(f"{arg}: no such file or directory")
    own = os.path.join(arg, "metrics.jsonl")
    if os.path.isfile(own):
        return [(own, arg)]
    subs = sorted(d for d in os.listdir(arg) if os.path.isfile(os.path.join(arg, d, "metrics.jsonl")))
    if not subs:
        raise metrics_io.MetricsError(f"{arg}: no metrics.jsonl in it or in its subdirectories (not a run directory "
                                      f"or a sweep)")
    return [(os.path.join(arg, d, "metrics.jsonl"), os.path.join(arg, d)) for d in subs]


def label_runs(runs):
    """run.name where it names one run; else the directory's last part, or the whole path if that repeats."""
    names = [r.name for r in runs]
    bases = [os.path.basename(os.path.normpath(r.shown)) for r in runs]
    for r, name, base in zip(runs, names, bases):
        if name and names.count(name) == 1:
            r.label = name
        elif bases.count(base) == 1:
            r.label = base if not name else f"{name} ({base})"
        else:
            r.label = os.path.normpath(r.shown)


def panels_for(runs):
    kinds = [BPT] if all(r.lm for r in runs) else [ACC] if not any(r.lm for r in runs) else [BPT, ACC]
    return [LOSS] + kinds + [LR, GNORM, TPS, PPL]


def draw(out, runs, title):
    """Draws and writes the PNG; returns (panel titles, series read back from the figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    titles = panels_for(runs)
    ncols = 3
    nrows = (len(titles) + ncols - 1) // ncols
    fig, grid = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False)
    axes = dict(zip(titles, grid.flat))
    for ax in list(grid.flat)[len(titles):]:
        ax.remove()
    colors = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    styles = ["-", "--", "-.", (0, (5, 1, 1, 1, 1, 1))]
    for i, run in enumerate(runs):
        c = colors[i % len(colors)]
        steps = sorted(run.train)
        rows = [run.train[s] for s in steps]
        gid = lambda series: json.dumps([run.label, series])
        axes[LOSS].plot(steps, [r["loss"] for r in rows], "-", color=c, gid=gid("train"))
        ev = [e for e in run.evals if not math.isnan(e["loss"])]
        axes[LOSS].plot([e["step"] for e in ev], [e["loss"] for e in ev], "o", color=c, markersize=5, gid=gid("val"))
        metric = BPT if run.lm else ACC
        axes[metric].plot(steps, [r["value"] for r in rows], "-", color=c, gid=gid("train"))
        ev = [e for e in run.evals if e["metric"] == metric and not math.isnan(e["value"])]
        axes[metric].plot([e["step"] for e in ev], [e["value"] for e in ev], "o", color=c, markersize=5, gid=gid("val"))
        for panel, key in ((LR, "lr"), (GNORM, "grad_norm"), (TPS, "tokens_per_s")):
            axes[panel].plot(steps, [r[key] for r in rows], "-", color=c, gid=gid("train"))
        n_layers = max(len(r["ppl"]) for r in rows)
        for layer in range(n_layers):
            y = [r["ppl"][layer] if layer < len(r["ppl"]) else math.nan for r in rows]
            axes[PPL].plot(steps, y, linestyle=styles[layer % len(styles)], color=c, gid=gid(f"layer {layer}"))
        for s, k in run.restarts:
            for panel in titles:
                if panel == metric or panel not in (BPT, ACC):
                    axes[panel].axvline(s, color=c, linestyle=(0, (1, 2)), linewidth=1.2, gid=gid(f"restart {k}"))
            axes[LOSS].annotate(f"restart {k}", (s, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                                textcoords="offset points", rotation=90, va="top", fontsize=7, color=c)
    for panel, ax in axes.items():
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[GNORM].set_yscale("log")
    axes[LR].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    if ACC in axes:
        axes[ACC].set_ylim(-0.02, 1.02)
    style = [Line2D([], [], color="gray", linestyle="-", label="train"),
             Line2D([], [], color="gray", marker="o", linestyle="", label="validation"),
             Line2D([], [], color="gray", linestyle=(0, (1, 2)), label="restart (resumed after this step)")]
    axes[LOSS].legend(handles=style, fontsize=8, loc="upper right")
    n_layers = max(len(r["ppl"]) for run in runs for r in run.train.values())
    axes[PPL].legend(handles=[Line2D([], [], color="gray", linestyle=styles[k % len(styles)], label=f"layer {k}")
                              for k in range(n_layers)], fontsize=8, loc="lower right")
    ncol = min(len(runs), 4)
    below = (0.25 + 0.3 * ((len(runs) + ncol - 1) // ncol)) / fig.get_figheight()  # the runs' legend, in inches
    fig.suptitle(title)
    fig.tight_layout(rect=(0, below, 1, 1))
    fig.legend(handles=[Line2D([], [], color=colors[i % len(colors)], linewidth=3, label=r.label)
                        for i, r in enumerate(runs)], loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    series = read_back(fig)
    fig.savefig(out, dpi=100, metadata={"Title": title, "Panels": "\n".join(titles),
                                        "Series": json.dumps(series, separators=(",", ":"))})
    plt.close(fig)
    return titles, series


def read_back(fig):
    """{panel: {run: {series: [points, last x, last y]}}} of every labelled line of the figure."""
    out = {}
    for ax in fig.axes:
        panel = out.setdefault(ax.get_title(), {})
        for line in ax.get_lines():
            if not line.get_gid():
                continue
            run, series = json.loads(line.get_gid())
            pts = [(float(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata())
                   if not math.isnan(float(y))]
            if series.startswith("restart"):
                pts = pts[:1]  # a vertical line: its step
            panel.setdefault(run, {})[series] = [len(pts)] + (list(pts[-1]) if pts else [None, None])
    return out


def main(argv):
    ap = argparse.ArgumentParser(prog="launch/plot.py", description=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directory, metrics file or sweep directory")
    ap.add_argument("--out", required=True, metavar="F.png", help="the figure to write")
    ap.add_argument("--title", help="the figure's title (default: the runs' labels)")
    a = ap.parse_args(argv)  # bad usage: argparse prints it and exits 2
    if not a.out.lower().endswith(".png"):
        print(f"{PROG}: error: --out {a.out}: expected a .png file name", file=sys.stderr)
        return 2
    try:
        found = [f for arg in a.runs for f in expand(arg)]
        runs = [load(path, shown) for path, shown in found]
    except metrics_io.MetricsError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    label_runs(runs)
    title = a.title or "LongVQ: " + ", ".join(r.label for r in runs[:6]) + (f" and {len(runs) - 6} more" if len(runs) > 6 else "")
    try:
        titles, _ = draw(a.out, runs, title)
    except ImportError as e:
        print(f"{PROG}: error: no plot ({e}): install python3-matplotlib (launch/install-deps.sh)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: cannot write {a.out}: {e.strerror}", file=sys.stderr)
        return 1
    for r in runs:
        steps = sorted(r.train)
        print(f"{PROG}: {r.label}: {r.path}: steps {steps[0]}..{steps[-1]} ({len(steps)} lines), {len(r.evals)} "
              f"evaluation(s), {len(r.restarts)} restart(s)" + "".join(f", restart {k} after step {s}" for s, k in r.restarts))
    print(f"{PROG}: wrote {a.out} ({len(runs)} run(s); panels: {' | '.join(titles)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
