"""Redis benchmarks: the same rate-limited route with RedisRateLimitStore vs MemoryRateLimitStore.

Loaded by bench/run.py (which provides `register` and `APPS`). At load time this file
starts one throw-away redis-server (no persistence) on a free port, passes its URL to the
servers in CELLO_BENCH_REDIS_URL and kills it at exit (only when the redis suite is
selected, explicitly or by running every suite). Needs redis-server on PATH.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def _start_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the redis suite needs redis-server on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="cello-bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    stop()
    raise RuntimeError("redis-server did not start for the redis suite")


def _wanted():
    """True unless --suite was given without "redis" (then no redis-server is started)."""
    argv = sys.argv[1:]
    named = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--suite"]
    named += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--suite=")]
    return not named or "redis" in named


if _wanted():
    os.environ["CELLO_BENCH_REDIS_URL"] = _start_redis()  # inherited by the server processes
_APP = str(APPS / "redis_app.py")  # noqa: F821

register(  # noqa: F821
    "redis",
    [
        ("sliding window: Redis vs memory store", "rl-memory", "rl-redis", "/", None, []),
        ("token bucket: Redis vs memory store", "rl-memory-tb", "rl-redis-tb", "/", None, []),
    ],
    {
        "rl-memory": [_APP, "memory-sliding_window"],
        "rl-redis": [_APP, "redis-sliding_window"],
        "rl-memory-tb": [_APP, "memory-token_bucket"],
        "rl-redis-tb": [_APP, "redis-token_bucket"],
    },
)
