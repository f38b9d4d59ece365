"""Load benchmark: cello_twisted vs raw twisted.web, same run, same machine.

Each server runs in its own process pinned to CPU 0; wrk runs pinned to CPU 1.
Every scenario alternates baseline and candidate for several rounds and reports
median req/s and the median of the per-round candidate/baseline ratios (with their range). Usage:

    python bench/run.py                      # every suite, 3 rounds of 5 s
    python bench/run.py --suite core --rounds 5 --duration 5
    python bench/run.py --suite features --only calibration --only rate-limited --concurrent --rounds 8 --duration 3
    python bench/run.py --reference ../old-checkout --concurrent   # this tree vs an earlier one, same routes

``--concurrent`` loads baseline and candidate at the same time (both servers share CPU 0)
and compares server CPU time per request: on a shared, noisy machine this pairs every
measurement with its baseline in time, which alternating runs cannot.
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

#: Extra environment per server (``--reference`` runs the same app from another checkout).
SERVER_ENV: dict[str, dict[str, str]] = {}


def add_reference(path: str) -> None:
    """Suite ``reference``: the core routes served from checkout ``path`` (baseline) vs this tree."""
    root = str(Path(path).resolve())
    SERVERS["cello-ref"] = [str(APPS / "cello_app.py")]
    SERVER_ENV["cello-ref"] = {"PYTHONPATH": root}
    SERVER_ENV["cello"] = {"PYTHONPATH": str(HERE.parent)}
    SUITES["reference"] = [
        (label, "cello-ref", "cello", path, script, headers)
        for label, _base, _cand, path, script, headers in SUITES["core"]
    ]


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
    # A fixed hash seed: two processes of the same app then lay out their dicts alike
    # (random seeds alone move a server's speed by a few percent between runs).
    env = {**os.environ, "PYTHONHASHSEED": "0", **SERVER_ENV.get(name, {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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


def _wrk_cmd(port: int, path: str, script: str | None, headers: list[str], duration: float) -> list[str]:
    cmd = [*_pin(1), "wrk", "-t1", "-c32", f"-d{int(duration)}s"]
    if script:
        cmd += ["-s", str(HERE / script)]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    return cmd


def _wrk_parse(out: str, path: str) -> tuple[float, int]:
    """(requests/s, requests) from wrk's report; any non-2xx answer or socket error is fatal."""
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if non2xx or errors or not match or not count:
        raise RuntimeError(f"wrk reported problems for {path}:\n{out}")
    return float(match.group(1)), int(count.group(1))


def wrk(port: int, path: str, script: str | None, headers: list[str], duration: float) -> float:
    cmd = _wrk_cmd(port, path, script, headers, duration)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    return _wrk_parse(out, path)[0]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_together(targets: list[tuple[subprocess.Popen, int, str]], script, headers, duration) -> list[float]:
    """Load every server at once (one wrk each); return each server's CPU µs per request.

    The servers share CPU 0, so whatever else the machine does at that moment hits
    all of them alike; CPU time per request is the cost being compared.
    """
    before = [_cpu_seconds(proc.pid) for proc, _port, _path in targets]
    runs = [
        subprocess.Popen(_wrk_cmd(port, path, script, headers, duration), stdout=subprocess.PIPE, text=True)
        for _proc, port, path in targets
    ]
    counts = [_wrk_parse(run.communicate(timeout=duration + 30)[0], t[2])[1] for run, t in zip(runs, targets, strict=True)]
    after = [_cpu_seconds(proc.pid) for proc, _port, _path in targets]
    return [(a - b) / n * 1e6 for a, b, n in zip(after, before, counts, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", help="suite(s) to run (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument(
        "--only", action="append", help="run only the scenarios whose label contains this text (repeatable)"
    )
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="load baseline and candidate at the same time and compare server CPU per request",
    )
    parser.add_argument("--instances", type=int, default=4, help="--concurrent: fresh server pairs per scenario")
    parser.add_argument(
        "--reference", metavar="CHECKOUT", help="add suite 'reference': the core routes from CHECKOUT vs this tree"
    )
    args = parser.parse_args()
    if args.reference:
        add_reference(args.reference)
        args.suite = args.suite or ["reference"]
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    for extra in sorted(HERE.glob("suites_*.py")):
        namespace: dict = {"register": register, "APPS": APPS}
        exec(compile(extra.read_text(), str(extra), "exec"), namespace)
    suites = args.suite or list(SUITES)
    rows = [row for suite in suites for row in SUITES[suite] if not args.only or any(text in row[0] for text in args.only)]
    needed = sorted({r[1] for r in rows} | {r[2] for r in rows})
    if args.concurrent:
        _run_concurrent(rows, args)
        return 0
    procs = {}
    try:
        for name in needed:
            procs[name] = start_server(name)
        _run_alternating(rows, procs, args)
    finally:
        for proc, _port in procs.values():
            _stop(proc)
    return 0


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _paths(path: str) -> tuple[str, str]:
    base_path, _, cand_path = path.partition("|")
    return base_path, cand_path or base_path


def _ratio_cell(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def _run_alternating(rows: list, procs: dict, args: argparse.Namespace) -> None:
    print(f"# wrk -t1 -c32 -d{args.duration:g}s, {args.rounds} rounds, servers on CPU 0, wrk on CPU 1")
    print("| scenario | baseline | req/s | candidate | req/s | ratio (min–max) |")
    print("|---|---|---:|---|---:|---:|")
    for label, base, cand, path, script, headers in rows:
        base_path, cand_path = _paths(path)
        wrk(procs[base][1], base_path, script, headers, 1)  # warm-up
        wrk(procs[cand][1], cand_path, script, headers, 1)
        base_rps, cand_rps = [], []
        for round_no in range(args.rounds):
            # Alternate who goes first, so neither side always runs on the warmer machine.
            if round_no % 2:
                cand_rps.append(wrk(procs[cand][1], cand_path, script, headers, args.duration))
                base_rps.append(wrk(procs[base][1], base_path, script, headers, args.duration))
            else:
                base_rps.append(wrk(procs[base][1], base_path, script, headers, args.duration))
                cand_rps.append(wrk(procs[cand][1], cand_path, script, headers, args.duration))
        # Each round's candidate ran right after its baseline: the median of those paired
        # ratios resists the machine's drift better than a ratio of medians.
        ratios = [cr / br for br, cr in zip(base_rps, cand_rps, strict=True)]
        b, c = statistics.median(base_rps), statistics.median(cand_rps)
        print(f"| {label} | {base} | {b:,.0f} | {cand} | {c:,.0f} | {_ratio_cell(ratios)} |", flush=True)


def _run_concurrent(rows: list, args: argparse.Namespace) -> None:
    instances = max(1, min(args.instances, args.rounds))
    print(
        f"# both servers loaded at once on CPU 0 (one wrk -t1 -c32 -d{args.duration:g}s each, on CPU 1), "
        f"{args.rounds} rounds over {instances} fresh pairs of processes; "
        "cost = candidate CPU per request / baseline CPU per request"
    )
    print("| scenario | baseline | CPU µs/req | candidate | CPU µs/req | cost (min–max) |")
    print("|---|---|---:|---|---:|---:|")
    for label, base, cand, path, script, headers in rows:
        base_path, cand_path = _paths(path)
        base_us, cand_us = [], []
        for instance in range(instances):
            # Fresh processes per pair: one process's memory layout can make it a few
            # percent faster or slower than the next, so no single pair decides the result.
            pair = [start_server(base), start_server(cand)]
            try:
                targets = [(pair[0][0], pair[0][1], base_path), (pair[1][0], pair[1][1], cand_path)]
                wrk_together(targets, script, headers, 1)  # warm-up
                for _ in range(args.rounds // instances + (instance < args.rounds % instances)):
                    b, c = wrk_together(targets, script, headers, args.duration)
                    base_us.append(b)
                    cand_us.append(c)
            finally:
                for proc, _port in pair:
                    _stop(proc)
        costs = [c / b for b, c in zip(base_us, cand_us, strict=True)]
        print(
            f"| {label} | {base} | {statistics.median(base_us):.1f} | {cand} | "
            f"{statistics.median(cand_us):.1f} | {_ratio_cell(costs)} |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
