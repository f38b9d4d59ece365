"""Throw-away Redis Sentinel and Cluster setups on 127.0.0.1 for the failover tests; waits bounded."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from ._redis_server import REDIS_SERVER, RedisServer, _free_port, _ping

REDIS_CLI = shutil.which("redis-cli")


def cli(port: int, *args: str, timeout: float = 5.0) -> str:
    """``redis-cli -p port args...``'s output (raises on failure)."""
    if REDIS_CLI is None:
        raise AssertionError("redis-cli is not on PATH (apt-get install redis-tools)")
    out = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return out.stdout


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


def _safe(fn: Callable[[], bool]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return fn()
        except (subprocess.SubprocessError, OSError):
            return False

    return check


class Sentinel:
    """A master, one replica and one sentinel (quorum 1, down-after 1 s) monitoring ``mymaster``."""

    service = "mymaster"

    def __init__(self) -> None:
        self.master = RedisServer()
        self.replica = RedisServer(("--replicaof", "127.0.0.1", str(self.master.port)))
        self.dir = tempfile.mkdtemp(prefix="cello-sentinel-test-")
        self.port = _free_port()
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as fh:
            fh.write(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 5000\n"
            )
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, conf, "--sentinel", "--logfile", os.path.join(self.dir, "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait(lambda: _ping(self.port), 5, "sentinel answering")
        wait(
            _safe(lambda: "master_link_status:up" in cli(self.replica.port, "INFO", "replication")),
            10, "replica in sync",
        )  # fmt: skip
        wait(
            _safe(lambda: str(self.replica.port) in cli(self.port, "SENTINEL", "REPLICAS", self.service)),
            10, "sentinel knows the replica",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def master_port(self) -> int:
        out = cli(self.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service).split()
        return int(out[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.master.close()
        self.replica.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """Three masters (no replicas), node timeout 1 s, created with ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        flags = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "1000")  # fmt: skip
        self.nodes = [RedisServer(flags) for _ in range(3)]
        cli(
            self.nodes[0].port, "--cluster", "create",
            *[f"127.0.0.1:{n.port}" for n in self.nodes], "--cluster-yes", timeout=20,
        )  # fmt: skip
        self.wait_ok(15)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def ok(self) -> bool:
        def all_ok() -> bool:
            return all("cluster_state:ok" in cli(n.port, "CLUSTER", "INFO") for n in self.nodes)

        return _safe(all_ok)()

    def wait_ok(self, timeout: float) -> None:
        wait(self.ok, timeout, "cluster_state:ok on every node")

    def close(self) -> None:
        for node in self.nodes:
            node.close()
