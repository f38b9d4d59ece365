"""Broadcast across real processes: examples/chat.py with --workers 2 plus a second server (SPEC §10)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from tests._support.live import RawClient, ws_connect
from tests._support.processes import PYTHON, spawn, tempdir

from ._redis_server import start

pytestmark = pytest.mark.live

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT = os.path.join(ROOT, "examples", "chat.py")
DATA = re.compile(rb"event: (\w+)\r?\ndata: (.*)\r?\n")


class Remote:
    """What ws_connect needs to reach a server in another process."""

    def __init__(self, number: int) -> None:
        self.number = number

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.number}{path}"


def sse_events(client: RawClient) -> list[tuple[str, object]]:
    return [(m.group(1).decode(), json.loads(m.group(2))) for m in DATA.finditer(bytes(client.data))]


@inlineCallbacks
def until(condition, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        yield deferLater(reactor, 0.02, lambda: None)


class ChatAcrossProcessesTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.redis = start(self)
        self.inspect = self.redis.client()
        self.addCleanup(self.inspect.close)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.dir = tempdir(self)

    def serve(self, *flags: str) -> int:
        child = spawn(
            self,
            [PYTHON, CHAT, "--port", "0", "--no-logs", *flags],
            self.dir,
            {"REDIS_URL": self.redis.url, "PYTHONPATH": ROOT},
        )
        self.addCleanup(child.stop)
        port = child.port()
        for n in range(int(flags[1]) if flags else 0):
            child.wait_for(rf"worker {n} serving", 15)
        return port

    def numsub(self) -> int:
        return dict(self.inspect.pubsub_numsub("cello:broadcast:room:t")).get(b"cello:broadcast:room:t", 0)

    @inlineCallbacks
    def sse(self, port: int):  # noqa: ANN201
        client = RawClient()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5), client)
        client.transport.write(b"GET /rooms/t/events HTTP/1.0\r\nHost: x\r\n\r\n")
        yield until(lambda: sse_events(client), 5, "welcome event")
        return client, sse_events(client)[0][1]["worker"]

    @inlineCallbacks
    def ws(self, port: int):  # noqa: ANN201
        client = yield ws_connect(Remote(port), "/rooms/t/ws", deflate=False)
        welcome = json.loads((yield client.messages.get().addTimeout(5, reactor)))
        return client, welcome["welcome"]["worker"]

    @inlineCallbacks
    def test_messages_reach_sse_and_websocket_subscribers_on_every_worker_and_process(self) -> None:
        """§10 r1, r3: one POST reaches SSE and WebSocket clients on both workers and another server; leaving releases."""
        cluster, single = self.serve("--workers", "2"), self.serve()
        clients: dict[str, dict[int, list]] = {"sse": {}, "ws": {}}
        for kind, connect in (("sse", self.sse), ("ws", self.ws)):
            for _ in range(24):  # until each worker holds one of each kind (bounded)
                if len(clients[kind]) == 2:
                    break
                client, worker = yield connect(cluster)
                clients[kind].setdefault(worker, []).append(client)
            self.assertEqual(len(clients[kind]), 2, f"{kind} clients on both workers")
            client, worker = yield connect(single)
            clients[kind].setdefault(worker, []).append(client)
        workers = set(clients["sse"]) | set(clients["ws"])
        self.assertEqual(len(workers), 3)
        yield until(lambda: self.numsub() == 3, 5, "one Redis subscription per process")

        for n, port in enumerate((cluster, single, cluster)):
            resp = yield treq.post(
                f"http://127.0.0.1:{port}/rooms/t/messages",
                json={"user": "ann", "text": f"hello {n}"},
                pool=self.pool,
                timeout=5,
            )
            self.assertEqual(resp.code, 200)
            yield resp.json()
            expected = {"user": "ann", "text": f"hello {n}"}
            for worker, sse_clients in clients["sse"].items():
                for client in sse_clients:
                    yield until(
                        lambda c=client, e=expected: ("message", e) in sse_events(c), 5, f"SSE on {worker}"
                    )
            for worker, ws_clients in clients["ws"].items():
                for client in ws_clients:
                    got = yield client.messages.get().addTimeout(5, reactor)
                    self.assertEqual(json.loads(got), expected, f"WebSocket on {worker}")

        # A WebSocket client posts through its socket; everyone gets it.
        any_ws = next(iter(clients["ws"].values()))[0]
        any_ws.sendMessage(json.dumps({"user": "bob", "text": "via ws"}).encode())
        for ws_clients in clients["ws"].values():
            for client in ws_clients:
                got = yield client.messages.get().addTimeout(5, reactor)
                self.assertEqual(json.loads(got), {"user": "bob", "text": "via ws"})

        for sse_clients in clients["sse"].values():
            for client in sse_clients:
                client.transport.loseConnection()
        for ws_clients in clients["ws"].values():
            for client in ws_clients:
                client.sendClose(1000)
                yield client.closed.addTimeout(5, reactor)
        yield until(lambda: self.numsub() == 0, 5, "subscriptions released")
