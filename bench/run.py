"""Load benchmark: cello_twisted vs raw twisted.web, same run, same machine.

Each server runs in its own process pinned to CPU 0; wrk runs pinned to CPU 1.
Every scenario alternates baseline and candidate for several rounds and reports
median req/s and the median of the per-round candidate/baseline ratios (with their range). Usage:

    python bench/run.py                      # every suite, 3 rounds of 5 s
    python bench/run.py --suite core --rounds 5 --duration 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"

#: suite -> list of (label, baseline server, candidate server, path, wrk script, extra wrk headers);
#: path may be "baseline_path|candidate_path" when the two sides serve different routes.
SUITES: dict[str, list[tuple[str, str, str, str, str | None, list[str]]]] = {
    "core": [
        ("hello JSON  GET /", "raw", "cello", "/", None, []),
        ("param GET /users/{id}", "raw", "cello", "/users/42", None, []),
        ("JSON echo POST /echo", "raw", "cello", "/echo", "post.lua", []),
    ],
}

SERVERS: dict[str, list[str]] = {
    "raw": [str(APPS / "raw_twisted.py")],
    "cello": [str(APPS / "cello_app.py")],
}


def register(suite: str, rows: list, servers: dict[str, list[str]]) -> None:
    """Feature benchmarks add their scenarios and servers here (see bench/suites_*.py)."""
    SUITES.setdefault(suite, []).extend(rows)
    SERVERS.update(servers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def start_server(name: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [*_pin(0), sys.executable, *SERVERS[name], str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {name} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server {name} did not start on port {port}")


def wrk(port: int, path: str, script: str | None, headers: list[str], duration: float) -> float:
    cmd = [*_pin(1), "wrk", "-t1", "-c32", f"-d{int(duration)}s"]
    if script:
        cmd += ["-s", str(HERE / script)]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if non2xx or errors or not match:
        raise RuntimeError(f"wrk reported problems for {path}:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", help="suite(s) to run (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    for extra in sorted(HERE.glob("suites_*.py")):
        namespace: dict = {"register": register, "APPS": APPS}
        exec(compile(extra.read_text(), str(extra), "exec"), namespace)
    suites = args.suite or list(SUITES)
    rows = [row for suite in suites for row in SUITES[suite]]
    needed = sorted({r[1] for r in rows} | {r[2] for r in rows})
    procs = {}
    try:
        for name in needed:
            procs[name] = start_server(name)
        print(f"# wrk -t1 -c32 -d{args.duration:g}s, {args.rounds} rounds, servers on CPU 0, wrk on CPU 1")
        print("| scenario | baseline | req/s | candidate | req/s | ratio (min–max) |")
        print("|---|---|---:|---|---:|---:|")
        for label, base, cand, path, script, headers in rows:
            base_path, _, cand_path = path.partition("|")
            cand_path = cand_path or base_path
            wrk(procs[base][1], base_path, script, headers, 1)  # warm-up
            wrk(procs[cand][1], cand_path, script, headers, 1)
            base_rps, cand_rps = [], []
            for _ in range(args.rounds):
                base_rps.append(wrk(procs[base][1], base_path, script, headers, args.duration))
                cand_rps.append(wrk(procs[cand][1], cand_path, script, headers, args.duration))
            b, c = statistics.median(base_rps), statistics.median(cand_rps)
            # Each round's candidate ran right after its baseline: the median of those paired
            # ratios resists the machine's drift better than a ratio of medians.
            paired = statistics.median(cr / br for br, cr in zip(base_rps, cand_rps, strict=True))
            low, high = min(cr / br for br, cr in zip(base_rps, cand_rps, strict=True)), max(
                cr / br for br, cr in zip(base_rps, cand_rps, strict=True)
            )
            print(
                f"| {label} | {base} | {b:,.0f} | {cand} | {c:,.0f} | {paired:.2f} ({low:.2f}–{high:.2f}) |",
                flush=True,
            )
    finally:
        for proc, _port in procs.values():
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
