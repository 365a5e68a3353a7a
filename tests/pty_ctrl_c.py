#!/usr/bin/env python3
"""Run a command on a pseudo-terminal and press Ctrl-C in it, as a user at a terminal does.

    pty_ctrl_c.py --log LOG --when FILE:TEXT [--again TEXT] [--timeout S] -- COMMAND...

COMMAND runs as the session leader of a new pseudo-terminal (its controlling terminal), so the
terminal driver turns the byte 0x03 into SIGINT for the terminal's foreground process group,
exactly as at a keyboard. Everything COMMAND prints goes to LOG. Once FILE contains TEXT, one Ctrl-C
is typed; with --again, a second one once the output shows that TEXT. Prints
`exit N` (the exit code, or 128+signal if COMMAND was killed by one) and
`ctrl_c_to_end S` (seconds from the first Ctrl-C to COMMAND's end); exits 1 if COMMAND did not end
within --timeout seconds after the first Ctrl-C (it is then killed) or FILE:TEXT never appeared.
"""
import argparse
import os
import pty
import select
import signal
import sys
import time


def give_up(pid, why):
    """Kills the child, says why, reaps it; the script's failure exit code."""
    os.kill(pid, signal.SIGKILL)
    print(why)
    os.waitpid(pid, 0)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--when", required=True, help="FILE:TEXT")
    ap.add_argument("--again", help="output TEXT after which Ctrl-C is typed a second time")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    wfile, wtext = a.when.split(":", 1)
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(a.cmd[0], a.cmd)
    out = bytearray()
    t_first = None
    sent_again = False
    start = time.monotonic()
    status = None
    with open(a.log, "wb") as log:
        while status is None:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: every holder of the terminal has closed it
                    chunk = b""
                log.write(chunk)
                log.flush()
                out += chunk
            now = time.monotonic()
            if t_first is None:
                try:
                    seen = wtext in open(wfile, errors="replace").read()
                except OSError:
                    seen = False
                if seen:
                    os.write(fd, b"\x03")
                    t_first = now
                elif now - start > a.timeout:
                    return give_up(pid, f"never saw {wtext!r} in {wfile}")
            elif a.again and not sent_again and a.again.encode() in out:
                os.write(fd, b"\x03")
                sent_again = True
            elif now - t_first > a.timeout:
                return give_up(pid, f"still running {a.timeout} s after Ctrl-C: killed")
            w, st = os.waitpid(pid, os.WNOHANG)
            if w == pid:
                status = st
        # the rest of the output
        while True:
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                break
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            log.write(chunk)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    print(f"exit {code}")
    print(f"ctrl_c_to_end {time.monotonic() - t_first:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
