#!/usr/bin/python3
"""Collects a LongVQ scaling sweep into scaling.csv, scaling.md and scaling.png.

usage: /usr/bin/python3 launch/scaling_report.py SWEEP_DIR [--strict]

SWEEP_DIR is what launch/scaling.sh writes: sweep.info (the sweep's settings, key=value lines) and
one directory per point holding point.info (its nodes, ranks, threads, exit code, ...), the run's
metrics.jsonl and its logs. Run it again on a finished sweep (or after a Slurm sweep submitted with
--no-wait) to rebuild the report. The output format, every column and the efficiency definition
are in docs/scaling.md ("longvq-scaling/1"); change them only together with that document.

Exit codes: 0 written; 1 could not write the report or the plot; 2 bad usage (no sweep there);
4 with --strict: written, but some point is not ok.
"""
import csv
import os
import re
import signal
import statistics
import sys

import metrics_io  # launch/metrics_io.py, beside this script

FORMAT = "longvq-scaling/1"
# The csv columns, in order (docs/scaling.md describes each one; keep the two in step).
COLUMNS = [
    "point", "status", "mode", "launcher", "nodes", "ranks_per_node", "ranks", "threads", "cores",
    "cores_per_node", "oversubscribed", "global_batch", "batch_per_rank", "warmup_steps",
    "timed_steps", "tokens_per_step", "tokens_per_s", "speedup", "efficiency", "baseline",
    "step_s", "step_s_median", "step_s_max", "compute_s", "comm_s", "exposed_comm_s", "data_s",
    "optimizer_s", "other_s", "hidden_share", "comm_bytes", "busbw_gbs", "gflops", "peak_rss_mib",
    "background_load", "exit_code", "error", "run_dir",
]
# Fields every training line of metrics.jsonl must have (an eval line has "split" instead).
REQUIRED = ["step", "tokens_per_s", "step_s", "compute_s", "comm_s", "exposed_comm_s", "data_s",
            "optimizer_s", "comm_bytes", "busbw_gbs", "gflops"]
# The trainer's own error lines (`longvq: error: ...`, `[rank r] error: ...`; not its warnings), then anything error-like
# (mpirun's and srun's reports of a dead rank, the sbatch template's summary).
TRAINER_ERROR = re.compile(r"^(longvq( [a-z]+)?: (error|unknown|unexpected|missing)|\[rank \d+\] (error|[^ ]+:[0-9]+:))")
OTHER_ERROR = re.compile(r"exited on signal|segmentation fault|killed|\berror\b|abort", re.I)
LOGS = ["train.err", "slurm.out", "submit.err", "train.log"]


class Bad(Exception):
    """A point's evidence is unusable; the message names the file and line."""


def read_info(path):
    """key=value lines (values run to the end of the line)."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                out[k.strip()] = v
    return out


def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def read_metrics(path):
    """Training lines of metrics.jsonl by step (a resumed run's later line wins); the reading and
    its errors are launch/metrics_io.py's."""
    rows = {}
    warn = lambda m: print(f"scaling_report: warning: {m}", file=sys.stderr)
    try:
        for n, obj in metrics_io.read_objects(path, warn):
            if metrics_io.kind(obj) != "train":
                continue  # evaluation and restart lines
            where = f"{path}:{n}"
            for k in REQUIRED + [k for k in ("tokens", "ranks", "threads", "peak_rss_mib") if k in obj]:
                metrics_io.number(obj, k, where)
            rows[metrics_io.step_of(obj, where)] = obj
    except metrics_io.MetricsError as e:
        raise Bad(str(e))
    return rows


def first_error(d):
    """The most telling error line of a point's logs, or ''."""
    texts = []
    for name in LOGS:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, errors="replace") as f:
                texts.append([l.strip() for l in f if l.strip()])
    for pattern in (TRAINER_ERROR, OTHER_ERROR):
        for lines in texts:
            for l in lines:
                if pattern.search(l):
                    return l[:300]
    for lines in texts:  # none looks like an error: the last thing the run said
        if lines:
            return lines[-1][:300]
    return ""


def summarize(rows, warmup, steps, ranks, threads):
    """Figures of the timed steps warmup+1 .. warmup+steps (see docs/scaling.md)."""
    want = range(warmup + 1, warmup + steps + 1)
    missing = [s for s in want if s not in rows]
    if missing:
        have = max(rows) if rows else 0
        raise Bad(f"metrics.jsonl: training steps {missing[0]}..{want[-1]} missing (last logged step {have}; "
                  f"the point needs {warmup} warm-up + {steps} timed steps)")
    t = [rows[s] for s in want]
    n = len(t)
    tok = [r["tokens"] if "tokens" in r else r["tokens_per_s"] * r["step_s"] for r in t]
    step = [r["step_s"] for r in t]
    sum_step = sum(step)
    if sum_step <= 0:
        raise Bad("metrics.jsonl: step_s is 0 over the timed steps")
    mean = lambda k: sum(r[k] for r in t) / n
    comm = sum(r["comm_s"] for r in t)
    out = {
        "tokens_per_step": sum(tok) / n,
        "tokens_per_s": sum(tok) / sum_step,
        "step_s": sum_step / n,
        "step_s_median": statistics.median(step),
        "step_s_max": max(step),
        "compute_s": mean("compute_s"), "comm_s": mean("comm_s"), "exposed_comm_s": mean("exposed_comm_s"),
        "data_s": mean("data_s"), "optimizer_s": mean("optimizer_s"), "comm_bytes": mean("comm_bytes"),
        # Rates are time-weighted (a ratio of sums): busbw_i x comm_i is step i's bytes x 2(W-1)/W.
        "hidden_share": 1 - sum(r["exposed_comm_s"] for r in t) / comm if comm > 0 else None,
        "busbw_gbs": sum(r["busbw_gbs"] * r["comm_s"] for r in t) / comm if comm > 0 else None,
        "gflops": sum(r["gflops"] * r["step_s"] for r in t) / sum_step,
        "peak_rss_mib": max((r["peak_rss_mib"] for r in t if "peak_rss_mib" in r), default=None),
    }
    out["other_s"] = out["step_s"] - out["compute_s"] - out["exposed_comm_s"] - out["data_s"] - out["optimizer_s"]
    # The trainer's own count of ranks and threads, where it logs them, must be the point's.
    for key, want_v in (("ranks", ranks), ("threads", threads)):
        seen = {int(r[key]) for r in t if key in r}
        if seen and seen != {want_v}:
            out["mismatch"] = f"the trainer logged {key} = {sorted(seen)}, the point asked for {want_v}"
    return out


def collect_point(sweep_dir, label, sweep):
    d = os.path.join(sweep_dir, label)
    p = {"point": label, "run_dir": d, "status": "not-run", "error": ""}
    info = read_info(os.path.join(d, "point.info")) if os.path.isfile(os.path.join(d, "point.info")) else {}
    for k in ("nodes", "ranks_per_node", "ranks", "threads", "cores_per_node", "global_batch"):
        p[k] = as_int(info.get(k))
    try:
        p["background_load"] = float(info["background_load"])
    except (KeyError, ValueError):
        p["background_load"] = None
    if p["ranks"] is None:
        p["error"] = "not started (no point.info)"
        return p
    p["cores"] = p["ranks"] * p["threads"]
    p["oversubscribed"] = p["ranks_per_node"] * p["threads"] > p["cores_per_node"]
    if p["global_batch"] % p["ranks"] == 0:
        p["batch_per_rank"] = p["global_batch"] // p["ranks"]
    rc = as_int(info.get("exit_code"))
    if rc is None:  # a Slurm job the driver did not wait for: the sbatch template's own record
        hist = os.path.join(d, "slurm-history.tsv")
        if os.path.isfile(hist):
            m = re.findall(r"\texit (\d+) ", open(hist, errors="replace").read())
            rc = int(m[-1]) if m else None
    p["exit_code"] = rc
    if rc is None:
        p["error"] = "no exit code recorded (the sweep was interrupted, or the job has not ended yet)"
        return p
    if info.get("timed_out") == "1" or rc == 3:
        p["status"] = "timeout"
        p["error"] = ("stopped by the time limit (--timeout)" if info.get("timed_out") == "1" else
                      "stopped by a signal before the end (exit 3: time limit, preemption or scancel)")
        return p
    if rc != 0:
        p["status"] = "bad-input" if rc == 2 else "failed"
        p["error"] = info.get("error") or first_error(d) or f"exit code {rc}"
        if rc > 128:  # a shell's or launcher's code for a process killed by a signal
            try:
                name = f" ({signal.Signals(rc - 128).name})"
            except ValueError:
                name = ""
            p["error"] = f"killed by signal {rc - 128}{name}: {p['error']}"
        return p
    try:
        path = os.path.join(d, "metrics.jsonl")
        if not os.path.isfile(path):
            raise Bad(f"{path}: missing although the run exited 0")
        p.update(summarize(read_metrics(path), sweep["warmup"], sweep["steps"], p["ranks"], p["threads"]))
        if "mismatch" in p:
            p["status"], p["error"] = "mismatch", p.pop("mismatch")
        else:
            p["status"] = "ok"
    except Bad as e:
        p["status"], p["error"] = "failed", str(e)
        print(f"scaling_report: {label}: {e}", file=sys.stderr)
    except OSError as e:
        p["status"], p["error"] = "failed", f"{e.filename}: {e.strerror}"
    return p


def add_efficiency(points):
    """Speedup and efficiency against the smallest ok point (fewest cores, then fewest ranks)."""
    ok = [p for p in points if p["status"] == "ok"]
    if not ok:
        return None
    base = min(ok, key=lambda p: (p["cores"], p["ranks"]))
    for p in ok:
        p["speedup"] = p["tokens_per_s"] / base["tokens_per_s"]
        p["efficiency"] = p["speedup"] * base["cores"] / p["cores"]
    for p in points:
        p["baseline"] = p is base
    return base


def fmt(v, spec):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if spec else str(v)


CSV_FORMATS = {"tokens_per_step": ".1f", "tokens_per_s": ".1f", "speedup": ".4f", "efficiency": ".4f",
               "hidden_share": ".4f", "comm_bytes": ".0f", "busbw_gbs": ".4f", "gflops": ".3f",
               "peak_rss_mib": ".1f", "background_load": ".2f"}


def write_csv(path, points, sweep):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for p in points:
            row = dict(p, mode=sweep["mode"], launcher=sweep["launcher"], warmup_steps=sweep["warmup"],
                       timed_steps=sweep["steps"])
            w.writerow([fmt(row.get(c), CSV_FORMATS.get(c, ".6f" if c.startswith("step_s") or c.endswith("_s") else "")) for c in COLUMNS])


def ms(v):
    return "" if v is None else f"{v * 1e3:.2f}"


def pct(v):
    return "" if v is None else f"{v * 100:.1f}%"


def write_md(path, points, sweep, base):
    over = [p for p in points if p.get("oversubscribed")]
    batch = (f"per-rank batch {sweep['batch_per_rank']} (global batch = {sweep['batch_per_rank']} x ranks)"
             if sweep["mode"] == "weak" else f"global batch {sweep['global_batch']} at every point")
    L = [f"# {sweep['mode'].capitalize()} scaling: `{sweep['config']}`", "",
         f"Format {FORMAT} (docs/scaling.md). {batch}; overrides: `{sweep.get('overrides') or 'none'}`.",
         f"Launcher {sweep['launcher']} on {sweep.get('host', '?')}, {sweep['cores_per_node']} cores per node; "
         f"{sweep['warmup']} warm-up steps, then {sweep['steps']} timed steps per point: times are means over "
         f"the timed steps, tokens/s is their total tokens / total time. {sweep.get('date', '')}, commit "
         f"{sweep.get('commit', '?')}.", ""]
    if base:
        L.append(f"Efficiency against the smallest point, **{base['point']}** ({base['cores']} core(s), "
                 f"{base['tokens_per_s']:.0f} tokens/s): (tokens/s / baseline tokens/s) x (baseline cores / cores)"
                 + ("; at 1 thread per rank this is baseline step time / step time." if sweep["mode"] == "weak"
                    else "; the speedup per core, tokens per step being the same at every point."))
    else:
        L.append("No point ran successfully: no efficiency.")
    L += ["", "| point | status | nodes | ranks | threads | cores | tokens/s | speedup | efficiency | step ms | "
          "compute ms | comm ms | exposed ms | data ms | optimizer ms | hidden | busbw GB/s | peak RSS MiB | "
          "background CPUs | note |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        note = []
        if p.get("oversubscribed"):
            note.append(f"**oversubscribed** ({p['ranks_per_node'] * p['threads']} on {p['cores_per_node']} cores): function, not speed")
        if p.get("baseline"):
            note.append("baseline")
        if p["status"] != "ok" and p["error"]:
            note.append(p["error"])
        ok = p["status"] == "ok"
        cells = [p["point"], p["status"] if ok else f"**{p['status']}**", fmt(p.get("nodes"), ""),
                 fmt(p.get("ranks"), ""), fmt(p.get("threads"), ""), fmt(p.get("cores"), ""),
                 fmt(p.get("tokens_per_s"), ".0f"), fmt(p.get("speedup"), ".2f"), pct(p.get("efficiency")),
                 ms(p.get("step_s")), ms(p.get("compute_s")), ms(p.get("comm_s")), ms(p.get("exposed_comm_s")),
                 ms(p.get("data_s")), ms(p.get("optimizer_s")), pct(p.get("hidden_share")),
                 fmt(p.get("busbw_gbs"), ".3f"), fmt(p.get("peak_rss_mib"), ".1f") or ("n/a" if ok else ""),
                 fmt(p.get("background_load"), ".2f"), "; ".join(note)]
        L.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    L.append("")
    if over:
        L.append(f"Oversubscribed points ({', '.join(p['point'] for p in over)}) run more ranks x threads per node "
                 f"than the node has cores: they show that the point works, not how fast it is.")
    L.append("hidden = 1 - exposed / comm (the share of the gradient reduction overlapped with backward); "
             "empty where nothing is communicated. peak RSS: max over ranks and timed steps (n/a: the trainer "
             "does not log it). background CPUs: CPUs other processes kept busy while the point ran (mpirun "
             "only); well above 0, the figures are those of a shared machine.")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def plot(path, points, sweep, base):
    """Throughput and efficiency against ranks, and the step-time split per point. Returns the
    panel titles (also stored in the PNG as its 'Panels' text)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ok = [p for p in points if p["status"] == "ok"]
    fig = plt.figure(figsize=(13, 9), layout="constrained")
    gs = fig.add_gridspec(2, 2)
    ax_t, ax_e, ax_s = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    series = sorted({p["threads"] for p in ok})
    ranks = sorted({p["ranks"] for p in ok})
    for k, t in enumerate(series):
        c = colors[k % len(colors)]
        s = sorted((p for p in ok if p["threads"] == t), key=lambda p: (p["ranks"], p["nodes"]))
        x = [p["ranks"] for p in s]
        for ax, y in ((ax_t, [p["tokens_per_s"] for p in s]), (ax_e, [100 * p["efficiency"] for p in s])):
            ax.plot(x, y, "-", color=c, label=f"{t} thread(s) per rank")
            for p, xv, yv in zip(s, x, y):  # hollow: oversubscribed
                ax.plot(xv, yv, "o", color=c, markersize=7, markerfacecolor="white" if p["oversubscribed"] else c)
                ax.annotate(p["point"], (xv, yv), textcoords="offset points", xytext=(5, 5), fontsize=7)
        # Ideal: throughput proportional to cores (efficiency 100%).
        ax_t.plot(x, [base["tokens_per_s"] * xv * t / base["cores"] for xv in x], ":", color=c)
    ax_e.axhline(100, color="gray", linestyle=":")
    titles = ["Throughput vs ranks", f"Efficiency vs ranks (against {base['point'] if base else 'no baseline'})",
              f"Step time split per point (means over {sweep['steps']} timed steps)"]
    for ax, title, ylab in ((ax_t, titles[0], "tokens/s"), (ax_e, titles[1], "efficiency (%)")):
        ax.set_title(title)
        ax.set_xlabel("ranks")
        ax.set_ylabel(ylab)
        ax.grid(True, alpha=0.3)
        if ranks:
            ax.set_xscale("log", base=2)
            ax.set_xticks(ranks)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.text(0.5, 0.5, "no point ran successfully", ha="center", transform=ax.transAxes)
    ax_e.set_ylim(bottom=0)
    ax_t.set_ylim(bottom=0)
    extra = [Line2D([], [], color="gray", linestyle=":", label="ideal (100% efficiency)"),
             Line2D([], [], color="gray", marker="o", linestyle="", markerfacecolor="white", label="oversubscribed")]
    ax_t.legend(handles=ax_t.get_legend_handles_labels()[0] + extra, fontsize=8)

    # Step-time split: the parts that add up to the step, and the whole reduction beside them (it
    # overlaps compute; only its exposed part adds to the step).
    parts = [("compute_s", "compute"), ("exposed_comm_s", "exposed communication"), ("data_s", "data"),
             ("optimizer_s", "optimizer"), ("other_s", "other")]
    xs = range(len(points))
    bottom = [0.0] * len(points)
    for k, (key, name) in enumerate(parts):
        h = [max(p.get(key) or 0, 0) * 1e3 if p["status"] == "ok" else 0 for p in points]
        ax_s.bar([x - 0.17 for x in xs], h, 0.34, bottom=bottom, label=name, color=colors[k % len(colors)])
        bottom = [b + v for b, v in zip(bottom, h)]
    ax_s.bar([x + 0.19 for x in xs], [p["comm_s"] * 1e3 if p["status"] == "ok" else 0 for p in points], 0.18,
             label="communication (all, overlapped)", color="white", edgecolor="black", hatch="//")
    top = max(bottom + [1e-9])
    for x, p in zip(xs, points):
        if p["status"] != "ok":
            ax_s.text(x, top * 0.02, p["status"], ha="center", va="bottom", rotation=90, color="red")
    ax_s.set_xticks(list(xs))
    ax_s.set_xticklabels([p["point"] + ("\n(oversub.)" if p.get("oversubscribed") else "") for p in points])
    ax_s.set_ylabel("ms per step")
    ax_s.set_title(titles[2])
    ax_s.legend(fontsize=8, ncol=3)
    ax_s.grid(True, axis="y", alpha=0.3)
    batch = (f"{sweep['batch_per_rank']} sequences per rank" if sweep["mode"] == "weak"
             else f"global batch {sweep['global_batch']}")
    suptitle = (f"{sweep['mode']} scaling of {sweep['config']} ({batch}, {sweep['launcher']}, "
                f"{sweep['cores_per_node']} cores per node)")
    fig.suptitle(suptitle)
    fig.savefig(path, dpi=100, metadata={"Title": suptitle, "Panels": "\n".join(titles)})
    plt.close(fig)
    return [ax.get_title() for ax in (ax_t, ax_e, ax_s)]


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    args = [a for a in argv if a != "--strict"]
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: /usr/bin/python3 launch/scaling_report.py SWEEP_DIR [--strict] (--help)", file=sys.stderr)
        return 2
    sweep_dir = args[0]
    info_path = os.path.join(sweep_dir, "sweep.info")
    if not os.path.isfile(info_path):
        print(f"scaling_report: error: {info_path} not found: not a sweep directory (launch/scaling.sh --out)",
              file=sys.stderr)
        return 2
    sweep = read_info(info_path)
    for k in ("steps", "warmup", "cores_per_node"):
        sweep[k] = as_int(sweep.get(k))
        if sweep[k] is None:
            print(f"scaling_report: error: {info_path}: '{k}' missing or not an integer", file=sys.stderr)
            return 2
    for k in ("mode", "launcher", "config", "points"):
        sweep.setdefault(k, "")
    points = [collect_point(sweep_dir, label, sweep) for label in sweep["points"].split()]
    base = add_efficiency(points)
    out = {k: os.path.join(sweep_dir, f"scaling.{k}") for k in ("csv", "md", "png")}
    try:
        write_csv(out["csv"], points, sweep)
        write_md(out["md"], points, sweep, base)
    except OSError as e:
        print(f"scaling_report: error: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        titles = plot(out["png"], points, sweep, base)
    except ImportError as e:
        print(f"scaling_report: error: no plot ({e}): install python3-matplotlib", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"scaling_report: error: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"scaling_report: wrote {out['csv']}, {out['md']}, {out['png']} (panels: {' | '.join(titles)})")
    counts = {}
    for p in points:
        counts[p["status"]] = counts.get(p["status"], 0) + 1
    bad = [f"{p['point']} {p['status']}: {p['error']}" for p in points if p["status"] != "ok"]
    print(f"scaling_report: {len(points)} point(s): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for b in bad:
        print(f"scaling_report:   {b}")
    return 4 if bad and "--strict" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
