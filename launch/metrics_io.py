"""Reading a run's metrics.jsonl (README "Outputs (run.dir)"): the one reader of launch/plot.py and
launch/scaling_report.py.

The trainer writes one JSON object per line, whole, and flushes it: training lines (with
"tokens_per_s"), evaluation lines (with "split"), restart lines (with "restart", written when a run
resumes). A run killed while writing leaves its last line cut short, without the newline: that line
alone is skipped with a warning (the lines before it are whole). Any other line that is not a JSON
object is an error naming the file and line.
"""
import json
import math


class MetricsError(Exception):
    """A metrics file cannot be used; the message starts with FILE:LINE (or FILE)."""


def read_objects(path, warn):
    """[(line_number, object)] of the file's non-empty lines. warn(message) gets the note about a cut
    last line; an unreadable file or a malformed line raises MetricsError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise MetricsError(f"{path}: cannot read: {e.strerror}")
    lines = data.split(b"\n")
    cut = lines[-1] != b""  # the file does not end with a newline: its last line may be cut short
    out = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise MetricsError(f"{path}:{n}: malformed metrics line (not UTF-8 at byte {e.start + 1})")
        except json.JSONDecodeError as e:
            if cut and n == len(lines):
                warn(f"{path}:{n}: last line cut short ({len(raw)} bytes, no newline: the run was stopped while "
                     f"writing it?): skipped")
                continue
            raise MetricsError(f"{path}:{n}: malformed metrics line ({e.msg}, column {e.colno})")
        if not isinstance(obj, dict):
            raise MetricsError(f"{path}:{n}: malformed metrics line (not a JSON object)")
        out.append((n, obj))
    return out


def kind(obj):
    """'restart', 'eval', 'train' or None (a kind of line this reader does not know: ignored)."""
    if "restart" in obj:
        return "restart"
    if "split" in obj:
        return "eval"
    if "tokens_per_s" in obj:
        return "train"
    return None


def number(obj, key, where, required=True, allow_null=False):
    """obj[key] as a float (None for JSON null when allow_null, or when absent and not required);
    otherwise MetricsError naming `where` (FILE:LINE) and the field."""
    if key not in obj:
        if required:
            raise MetricsError(f"{where}: field '{key}' is missing, expected a finite number")
        return None
    v = obj[key]
    if v is None and allow_null:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MetricsError(f"{where}: field '{key}' is {v!r}, expected a finite number")
    return float(v)


def step_of(obj, where):
    """The line's "step", a non-negative integer, or MetricsError."""
    v = obj.get("step")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise MetricsError(f"{where}: field 'step' is {'missing' if 'step' not in obj else repr(v)}, "
                           f"expected a non-negative integer")
    return v
