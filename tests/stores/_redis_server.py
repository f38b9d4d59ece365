"""A throw-away redis-server on a free 127.0.0.1 port for the Redis tests (never skipped)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too.

    Redis Cluster refuses ports above 55535, and the kernel's ephemeral range reaches
    60999, so a port it hands out is often unusable for a cluster node.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise AssertionError("no free port pair for a Redis Cluster node")


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``redis-server`` with no persistence in a temp dir; every wait is bounded."""

    def __init__(self, extra: tuple[str, ...] = (), port: int | None = None) -> None:
        self.extra = tuple(extra)
        if REDIS_SERVER is None:
            raise AssertionError(
                "redis-server is not on PATH: the Redis tests need a real server "
                "(apt-get install redis-server, or brew install redis)"
            )
        self.dir = tempfile.mkdtemp(prefix="cello-redis-test-")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = port or (_free_cluster_port() if "--cluster-enabled" in self.extra else _free_port())
            if self._spawn():
                return
        raise AssertionError(f"redis-server did not start; see {self.dir}/redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self, timeout: float = 5.0) -> bool:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--logfile",
                os.path.join(self.dir, "redis.log"),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if _ping(self.port):
                return True
            time.sleep(0.02)
        self._kill()
        return False

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGCONT)  # in case a test paused it
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Kill the server (the port is then refused) but keep the directory for a restart."""
        self._kill()

    def restart(self) -> None:
        """Start again on the same port (waits until it answers)."""
        self._kill()
        if not self._spawn():
            raise AssertionError(f"redis-server did not restart on port {self.port}")

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung Redis)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def client(self):  # noqa: ANN201 - redis.Redis
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def start(testcase) -> RedisServer:  # noqa: ANN001
    """A server stopped in ``testcase``'s cleanup."""
    server = RedisServer()
    testcase.addCleanup(server.close)
    return server


_SHARED: RedisServer | None = None


def shared() -> RedisServer:
    """One server for this test process (flush it in setUp); stopped at interpreter exit."""
    global _SHARED
    if _SHARED is None or _SHARED.proc is None or _SHARED.proc.poll() is not None:
        import atexit

        _SHARED = RedisServer()
        atexit.register(_SHARED.close)
    return _SHARED


def flushed(testcase) -> RedisServer:  # noqa: ANN001
    """The shared server, emptied for ``testcase``."""
    server = shared()
    client = server.client()
    client.flushall()
    client.close()
    return server
