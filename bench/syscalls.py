"""System calls per keep-alive request: ``strace -c -f -p PID`` on a server during a wrk run.

    python bench/syscalls.py [--duration 3] [--connections 32] [SERVER ...]

SERVER names are bench/run.py's (cello, cello-stock, raw, starlette, ...); default: all four.
The server is pinned to CPU 0 and wrk to CPU 1, as in run.py. strace slows the server a lot;
the figure that matters is calls per request, not the rate. Requires strace (apt-get install strace).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$")


def _load_suites() -> None:
    for extra in sorted(HERE.glob("suites_*.py")):
        namespace: dict = {"register": run.register, "APPS": run.APPS}
        exec(compile(extra.read_text(), str(extra), "exec"), namespace)


def count(name: str, path: str, script: str | None, duration: int, connections: int) -> tuple[int, dict[str, int]]:
    """(requests served, {syscall: calls}) for one wrk run against server ``name``."""
    proc, port = run.start_server(name)
    out = tempfile.mktemp(suffix=".strace")
    try:
        run.wrk(port, path, script, [], 1)  # warm-up
        tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(proc.pid), "-o", out], stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached
        cmd = run._wrk_cmd(port, path, script, [], duration)
        cmd[cmd.index("-c32")] = f"-c{connections}"
        report = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
        requests = run._wrk_parse(report, path)[1]
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        calls = {}
        for line in Path(out).read_text().splitlines():
            match = _ROW.match(line)
            if match and match.group(2) != "total":
                calls[match.group(2)] = int(match.group(1))
        return requests, calls
    finally:
        run._stop(proc)
        if os.path.exists(out):
            os.unlink(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="*", default=["cello", "cello-stock", "raw", "starlette"])
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()
    _load_suites()
    print(f"# GET {args.path}, wrk -t1 -c{args.connections} -d{args.duration}s under strace -c -f -p PID")
    print("| server | requests | syscalls/request | per request: top calls |")
    print("|---|---:|---:|---|")
    for name in args.servers:
        if name not in run.SERVERS:
            print(f"| {name} | (not available) | | |")
            continue
        requests, calls = count(name, args.path, None, args.duration, args.connections)
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
        detail = ", ".join(f"{call} {n / requests:.2f}" for call, n in top)
        print(f"| {name} | {requests:,} | {sum(calls.values()) / requests:.2f} | {detail} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
