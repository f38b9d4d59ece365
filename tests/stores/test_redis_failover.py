"""High availability: a Sentinel failover and a Cluster losing a node (SPEC §12 r5).

During the failover requests get 200, 429 or 503 (never a 500); normal service is back
within 5 s of the new master answering (Cluster: of ``cluster_state:ok`` again).
"""

from __future__ import annotations

import time

import pytest
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from cello_twisted import App, Broadcast, RateLimitConfig
from cello_twisted.stores import RedisRateLimitStore, RedisSessionStore
from cello_twisted.stores._redis_nodes import key_slot
from tests._support.live import raw_connect
from tests._support.processes import tempdir, write_app

from . import test_redis_processes as test_processes
from ._redis_topologies import Cluster, Sentinel
from .test_redis_broadcast_processes import Remote

pytestmark = pytest.mark.live
ALLOWED = {200, 429, 503}


def limited_app(url: str) -> tuple[App, list]:
    app = App()
    store = RedisRateLimitStore(url, timeout=0.5)
    sessions = RedisSessionStore(url, timeout=0.5)
    limit = RateLimitConfig(1_000_000, 60, store=store, key=lambda r: r.headers.get("X-Client"))

    @app.get("/limited", rate_limit=limit)
    def limited(request):  # noqa: ANN001, ANN202
        return sessions.load(request.headers.get("X-Client")).addCallback(lambda _: {"ok": True})

    return app, [store, sessions]


class Traffic:
    """Requests over raw sockets (no thread pool, no client-side pooling), statuses recorded."""

    def __init__(self, case: TestCase, app: App, clients: list[str]) -> None:
        port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        case.addCleanup(port.stopListening)
        self.remote = Remote(port.getHost().port)
        self.clients = clients
        self.log: list[tuple[float, str, int]] = []

    @inlineCallbacks
    def round(self):  # noqa: ANN201
        """One request per client; returns their statuses."""
        codes = []
        for client in self.clients:
            request = f"GET /limited HTTP/1.0\r\nX-Client: {client}\r\n\r\n".encode()
            proto = yield raw_connect(self.remote, request)
            yield proto.lost.addTimeout(5, reactor)
            code = int(bytes(proto.data).split(b" ", 2)[1])
            self.log.append((time.monotonic(), client, code))
            codes.append(code)
        return codes

    @inlineCallbacks
    def until_healthy(self, since: float, within: float = 5.0):  # noqa: ANN201
        """Rounds until every client gets 200; the seconds it took after ``since``."""
        while True:
            codes = yield self.round()
            if set(codes) == {200}:
                return time.monotonic() - since
            if time.monotonic() - since > within + 2:
                raise AssertionError(f"not healthy {within} s after recovery: {codes}")
            yield deferLater(reactor, 0.05, lambda: None)

    def statuses(self) -> set[int]:
        return {code for _, _, code in self.log}


class SentinelFailoverTests(TestCase):
    timeout = 40

    @inlineCallbacks
    def test_master_killed_then_service_resumes_on_the_new_master(self) -> None:
        """§12 r5: redis+sentinel:// follows a real failover; only 200/429/503; back within 5 s."""
        sentinel = yield threads.deferToThread(Sentinel)
        self.addCleanup(sentinel.close)
        old = sentinel.master_port()
        app, stores = limited_app(sentinel.url)
        traffic = Traffic(self, app, ["a", "b"])
        self.assertEqual((yield traffic.round()), [200, 200])
        sentinel.master.stop()  # the master dies; the sentinel promotes the replica
        while True:
            yield traffic.round()
            port = yield threads.deferToThread(sentinel.master_port)
            if port != old:
                break
            self.assertLess(traffic.log[-1][0] - traffic.log[0][0], 25, "no failover")
        self.assertEqual(port, sentinel.replica.port)
        took = yield traffic.until_healthy(time.monotonic())
        self.assertLessEqual(took, 5.0)
        self.assertLessEqual(traffic.statuses(), ALLOWED)
        self.assertIn(503, traffic.statuses())  # the outage was seen, and answered properly


class ClusterNodeLossTests(TestCase):
    timeout = 40

    @inlineCallbacks
    def test_node_lost_and_back_only_503s_then_service_resumes(self) -> None:
        """§12 r5: redis+cluster:// with a node down -> 503s (no 500); cluster ok again -> 200 within 5 s."""
        cluster = yield threads.deferToThread(Cluster)
        self.addCleanup(cluster.close)
        # One client per node: hash tags put its keys in that node's slot range.
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        clients = []
        for low, high in ranges:
            n = 0
            while not low <= key_slot(f"{{c{n}}}") <= high:
                n += 1
            clients.append(f"{{c{n}}}")
        app, stores = limited_app(cluster.url)
        traffic = Traffic(self, app, clients)
        self.assertEqual((yield traffic.round()), [200, 200, 200])
        lost = cluster.nodes[2]
        lost.stop()
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # the node timeout (1 s) passes: CLUSTERDOWN
            yield traffic.round()
        yield threads.deferToThread(lost.restart)
        yield threads.deferToThread(cluster.wait_ok, 15)
        took = yield traffic.until_healthy(time.monotonic())
        self.assertLessEqual(took, 5.0)
        self.assertLessEqual(traffic.statuses(), ALLOWED)
        self.assertIn(503, traffic.statuses())


class ClusterWorkersTests(test_processes.ProcessTests):
    """The multi-process exactness tests again, on a 3-node Redis Cluster (SPEC §12 r5)."""

    def setUp(self) -> None:
        self.redis = Cluster()
        self.addCleanup(self.redis.close)
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, "redis_app.py", test_processes.APP_SOURCE)


class HighAvailabilityBroadcastTests(TestCase):
    timeout = 40

    @inlineCallbacks
    def test_broadcast_over_sentinel_and_cluster(self) -> None:
        """§10, §12 r5: Broadcast works through redis+sentinel:// and redis+cluster:// URLs too."""
        sentinel = yield threads.deferToThread(Sentinel)
        self.addCleanup(sentinel.close)
        cluster = yield threads.deferToThread(Cluster)
        self.addCleanup(cluster.close)
        yield deferLater(reactor, 0, lambda: None)
        for url in (sentinel.url, cluster.url):
            publisher, listener = Broadcast(url), Broadcast(url)
            self.addCleanup(publisher.close)
            self.addCleanup(listener.close)

            async def roundtrip(publisher=publisher, listener=listener) -> object:  # noqa: ANN001
                async with listener.subscribe("ha") as sub:
                    await publisher.publish("ha", {"via": "ha"})
                    return await Deferred.fromCoroutine(sub.__anext__()).addTimeout(5, reactor)

            got = yield Deferred.fromCoroutine(roundtrip())
            self.assertEqual(got, {"via": "ha"}, url)
