"""Cluster scaling benchmark: 1 vs 2 processes sharing one socket, cello_twisted and raw twisted.web.

cello_twisted runs examples/hello.py with ``--workers N`` (the parent binds, workers adopt
fd 3). The raw twisted.web baseline (bench/apps/raw_twisted.py's resources) is served the
same way by this script in ``--raw-parent``/``--raw-worker`` modes. For each server,
``wrk -t1 -c32 -d5s`` hits ``/``; the script prints req/s, the 2/1 ratios and the RSS of
each worker. On a 2-core machine wrk itself needs most of a core, so the ratio is bounded
well below 2 there; run it on a bigger box for the real scaling curve. Usage:

    python bench/cluster.py [--duration 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELLO = ROOT / "examples" / "hello.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- raw twisted.web served like cello's cluster -------------------------------------------


def raw_parent(port: int, workers: int) -> None:
    """Bind, spawn ``workers`` copies of this script adopting fd 3, stop them on SIGTERM."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    children = [
        subprocess.Popen([sys.executable, __file__, "--raw-worker"], pass_fds=(sock.fileno(),),
                         env={**os.environ, "RAW_FD": str(sock.fileno())})
        for _ in range(workers)
    ]
    print("raw pids", " ".join(str(c.pid) for c in children), flush=True)

    def stop(*_: object) -> None:
        for c in children:
            c.terminate()
        for c in children:
            c.wait(10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


def raw_worker() -> None:
    sys.path.insert(0, str(HERE / "apps"))
    from raw_twisted import Request, Site, build  # noqa: E402  (bench app, not a package)
    from twisted.internet import reactor
    from twisted.internet.endpoints import AdoptedStreamServerEndpoint

    AdoptedStreamServerEndpoint(reactor, int(os.environ["RAW_FD"]), socket.AF_INET).listen(
        Site(build(), requestFactory=Request)
    )
    reactor.run()


# -- driver ---------------------------------------------------------------------------------


def start(kind: str, workers: int) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    port = free_port()
    if kind == "cello":
        cmd = [sys.executable, str(HELLO), "--port", str(port), "--workers", str(workers),
               "--env", "production", "--no-logs"]
    else:
        cmd = [sys.executable, __file__, "--raw-parent", str(port), str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pids: list[int] = []
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    buffer = ""
    while time.monotonic() < deadline:
        try:
            buffer += os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
        except BlockingIOError:
            pass
        if kind == "cello" and workers == 1:
            pids = [proc.pid]
            if "serving on" in buffer:
                break
        elif kind == "cello":
            pids = [int(p) for p in re.findall(r"worker \d+ started \(pid (\d+)\)", buffer)]
            if len(pids) == workers and len(re.findall(r"worker \d+ serving", buffer)) == workers:
                break
        else:
            m = re.search(r"raw pids ([\d ]+)", buffer)
            if m:
                pids = [int(p) for p in m.group(1).split()]
                if _answers(port):
                    break
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"{kind} x{workers} did not start:\n{buffer}")
    if not _answers(port, 5):
        raise RuntimeError(f"{kind} x{workers} does not answer")
    return proc, port, pids


def _answers(port: int, timeout: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wrk(port: int, duration: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk reported errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--raw-parent", nargs=2, type=int, metavar=("PORT", "N"))
    parser.add_argument("--raw-worker", action="store_true")
    args = parser.parse_args()
    if args.raw_worker:
        raw_worker()
        return 0
    if args.raw_parent:
        raw_parent(*args.raw_parent)
        return 0
    print(f"# wrk -t1 -c32 -d{args.duration}s GET /, {os.cpu_count()} CPUs, median of {args.rounds} round(s)")
    results: dict[tuple[str, int], float] = {}
    for kind in ("cello", "raw"):
        for workers in (1, 2):
            proc, port, pids = start(kind, workers)
            try:
                wrk(port, 1)  # warm-up
                rps = statistics.median(wrk(port, args.duration) for _ in range(args.rounds))
                rss = ", ".join(f"{rss_mb(p):.1f}" for p in pids)
            finally:
                stop(proc)
            results[(kind, workers)] = rps
            label = "cello_twisted" if kind == "cello" else "raw twisted.web"
            print(f"{label:16} workers={workers}: {rps:9.0f} req/s   RSS per worker (MB): {rss}")
    for kind in ("cello", "raw"):
        ratio = results[(kind, 2)] / results[(kind, 1)]
        print(f"{kind:5} 2/1 ratio: {ratio:.2f}")
    for workers in (1, 2):
        print(f"cello/raw at {workers} worker(s): {results[('cello', workers)] / results[('raw', workers)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
