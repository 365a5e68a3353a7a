#!/usr/bin/python3
"""Checks a sweep directory written by launch/scaling.sh against its own evidence (used by
tests/scaling.sh and tests/scaling_slurm.sh).

usage: scaling_check.py SWEEP_DIR DOCS_MD POINT=STATUS[:TEXT] ...

Recomputes, independently of launch/scaling_report.py, every figure of scaling.csv from the
points' metrics.jsonl and point.info; checks the statuses (and that TEXT is in a failed point's
error), the efficiency against the smallest point, the oversubscribed marks, the markdown rows,
and that scaling.png is a valid PNG with the three expected panels. Prints ok/FAIL lines; the exit
code is the number of failures.
"""
import csv
import json
import os
import statistics
import struct
import sys
import zlib

# The published format (docs/scaling.md, "longvq-scaling/1"): a change here is a format change.
COLUMNS = ("point status mode launcher nodes ranks_per_node ranks threads cores cores_per_node "
           "oversubscribed global_batch batch_per_rank warmup_steps timed_steps tokens_per_step "
           "tokens_per_s speedup efficiency baseline step_s step_s_median step_s_max compute_s comm_s "
           "exposed_comm_s data_s optimizer_s other_s hidden_share comm_bytes busbw_gbs gflops "
           "peak_rss_mib background_load exit_code error run_dir").split()
# Half the last digit the csv prints of each figure (times: 6 decimals).
HALF_DIGIT = {"tokens_per_s": 0.051, "tokens_per_step": 0.051, "hidden_share": 5.1e-5, "busbw_gbs": 5.1e-5,
              "gflops": 5.1e-4, "comm_bytes": 0.51, "peak_rss_mib": 0.051}
PANELS = ("Throughput vs ranks", "Efficiency vs ranks", "Step time split per point")

fails = 0


def check(name, cond):
    global fails
    print(("ok   " if cond else "FAIL ") + name)
    fails += 0 if cond else 1
    return cond


def close(a, b, rel=1e-5, abs_=2e-6):
    return abs(a - b) <= abs_ + rel * abs(b)


def info(path):
    return dict(l.rstrip("\n").split("=", 1) for l in open(path) if "=" in l)


def expected_figures(d, warmup, steps):
    """The figures of one point, straight from its metrics: timed steps warmup+1..warmup+steps."""
    rows = {}
    for l in open(os.path.join(d, "metrics.jsonl")):
        r = json.loads(l)
        if "tokens_per_s" in r:
            rows[r["step"]] = r
    t = [rows[s] for s in range(warmup + 1, warmup + steps + 1)]
    tok = [r.get("tokens", r["tokens_per_s"] * r["step_s"]) for r in t]
    T = sum(r["step_s"] for r in t)
    C = sum(r["comm_s"] for r in t)
    e = {"tokens_per_s": sum(tok) / T, "tokens_per_step": sum(tok) / len(t), "step_s": T / len(t),
         "step_s_median": statistics.median(r["step_s"] for r in t), "step_s_max": max(r["step_s"] for r in t),
         "gflops": sum(r["gflops"] * r["step_s"] for r in t) / T}
    for k in ("compute_s", "comm_s", "exposed_comm_s", "data_s", "optimizer_s", "comm_bytes"):
        e[k] = sum(r[k] for r in t) / len(t)
    e["other_s"] = e["step_s"] - e["compute_s"] - e["exposed_comm_s"] - e["data_s"] - e["optimizer_s"]
    e["hidden_share"] = 1 - sum(r["exposed_comm_s"] for r in t) / C if C > 0 else None
    e["busbw_gbs"] = sum(r["busbw_gbs"] * r["comm_s"] for r in t) / C if C > 0 else None
    e["peak_rss_mib"] = max(r["peak_rss_mib"] for r in t) if all("peak_rss_mib" in r for r in t) else None
    return e, [r["loss"] for r in t]


def png_chunks(path):
    """(type, data) of every chunk; raises on a bad signature or CRC."""
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    out, i = [], 8
    while i < len(b):
        n, = struct.unpack(">I", b[i:i + 4])
        kind, data = b[i + 4:i + 8], b[i + 8:i + 8 + n]
        crc, = struct.unpack(">I", b[i + 8 + n:i + 12 + n])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in chunk {kind}"
        out.append((kind, data))
        i += 12 + n
    return out


def main(argv):
    sweep, docs, expect = argv[0], argv[1], dict(a.split("=", 1) for a in argv[2:])
    s = info(os.path.join(sweep, "sweep.info"))
    warmup, steps, cores_node = int(s["warmup"]), int(s["steps"]), int(s["cores_per_node"])
    with open(os.path.join(sweep, "scaling.csv")) as f:
        rd = csv.reader(f)
        header = next(rd)
        rows = [dict(zip(header, r)) for r in rd]
    check("csv columns are the documented format", header == list(COLUMNS))
    doc = open(docs).read()
    check("every csv column is described in " + os.path.basename(docs),
          all(f"`{c}`" in doc for c in COLUMNS))
    check(f"csv rows are the points in order: {list(expect)}", [r["point"] for r in rows] == list(expect))
    ok = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        p = r["point"]
        want_status, _, want_text = expect.get(p, "?").partition(":")
        pi = info(os.path.join(sweep, p, "point.info"))
        check(f"{p}: status {want_status} (csv: {r['status']}{', ' + r['error'] if r['error'] else ''})",
              r["status"] == want_status and want_text in r["error"])
        n, rpn, t = int(pi["nodes"]), int(pi["ranks_per_node"]), int(pi["threads"])
        check(f"{p}: nodes/ranks/threads/cores from point.info; oversubscribed {r['oversubscribed']} "
              f"({rpn} ranks x {t} threads per node, {cores_node} cores)",
              (int(r["nodes"]), int(r["ranks_per_node"]), int(r["ranks"]), int(r["threads"]), int(r["cores"]))
              == (n, rpn, n * rpn, t, n * rpn * t) and int(r["cores_per_node"]) == cores_node and
              r["oversubscribed"] == ("yes" if rpn * t > cores_node else "no"))
        gb = int(s["batch_per_rank"]) * n * rpn if s["mode"] == "weak" else int(s["global_batch"])
        check(f"{p}: global batch {gb} ({s['mode']} scaling)", int(r["global_batch"]) == gb)
        if "exit_code" in pi:
            check(f"{p}: background load recorded by the mpirun launcher only ({r['background_load'] or 'none'})",
                  (r["background_load"] != "" and float(r["background_load"]) >= 0) == (s["launcher"] == "mpirun"))
        if r["status"] != "ok":
            check(f"{p}: no efficiency for a point that is not ok", r["efficiency"] == r["speedup"] == "")
        if r["status"] not in ("ok", "mismatch"):  # a mismatch ran: its figures are shown
            check(f"{p}: no figures for a point that did not run", r["tokens_per_s"] == "")
            continue
        e, _ = expected_figures(os.path.join(sweep, p), warmup, steps)
        bad = [k for k, v in e.items() if (v is None) != (r[k] == "") or
               (v is not None and not close(float(r[k]), v, 1e-9, HALF_DIGIT.get(k, 5.1e-7)))]
        check(f"{p}: figures equal the recomputed ones from metrics.jsonl (tokens/s {e['tokens_per_s']:.0f})"
              + (f"; differ: {bad}" if bad else ""), not bad)
    if ok:
        base = min(ok, key=lambda r: (int(r["cores"]), int(r["ranks"])))
        check(f"baseline is the smallest ok point ({base['point']})",
              [r["point"] for r in rows if r["baseline"] == "yes"] == [base["point"]])
        X0, c0 = float(base["tokens_per_s"]), int(base["cores"])
        check("efficiency = (tokens/s / baseline tokens/s) x (baseline cores / cores)",
              all(close(float(r["efficiency"]), float(r["tokens_per_s"]) / X0 * c0 / int(r["cores"]), 2e-4, 1e-4)
                  for r in ok))
    if s["mode"] == "strong" and len(ok) > 1:
        # Same global batch, same samples: every point trains the same maths (float sums aside).
        losses = [expected_figures(os.path.join(sweep, r["point"]), warmup, steps)[1] for r in ok]
        check("strong scaling: every point trained the same global batches (losses agree to 1e-3)",
              all(close(a, b, 1e-3, 0) for l in losses[1:] for a, b in zip(l, losses[0])))

    md = open(os.path.join(sweep, "scaling.md")).read().splitlines()
    for r in rows:
        line = [l for l in md if l.startswith(f"| {r['point']} |")]
        over = "**oversubscribed**" in (line[0] if line else "")
        check(f"scaling.md: one row for {r['point']}" + (", marked oversubscribed" if r["oversubscribed"] == "yes" else "")
              + ("" if r["status"] == "ok" else f", status **{r['status']}** with its error"),
              len(line) == 1 and over == (r["oversubscribed"] == "yes") and
              (r["status"] == "ok" or (f"**{r['status']}**" in line[0] and r["error"][:40] in line[0])))

    png = os.path.join(sweep, "scaling.png")
    try:
        chunks = png_chunks(png)
        w, h = struct.unpack(">II", chunks[0][1][:8])
        text = {k.decode(): v.decode("latin-1") for kind, data in chunks if kind == b"tEXt"
                for k, _, v in [data.partition(b"\0")]}
        valid = chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND" and any(k == b"IDAT" for k, _ in chunks)
    except (OSError, AssertionError, struct.error) as ex:
        valid, w, h, text = False, 0, 0, {}
        print(f"     {png}: {ex}")
    size = os.path.getsize(png) if os.path.exists(png) else 0
    check(f"scaling.png is a valid PNG ({w}x{h}, {size} bytes)", valid and w >= 800 and h >= 600 and size > 20000)
    panels = text.get("Panels", "").split("\n")
    check(f"scaling.png has the three panels: {panels}",
          len(panels) == 3 and all(p.startswith(want) for p, want in zip(panels, PANELS)))
    return fails


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
