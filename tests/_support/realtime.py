"""Helpers for realtime tests: raw in-memory HTTP exchanges and log capture."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(path: str = "/ws", **overrides: str | None) -> bytes:
    """A raw upgrade request; pass ``Header_Name=None`` to drop a header or a value to change it."""
    headers = {
        "Host": "localhost",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": KEY,
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_exchange(app: Any, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Feed raw request bytes to ``app.site()`` in memory; returns status, headers, body."""
    site = app.site(reactor=Clock())
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    transport.protocol = proto  # what a real transport offers; the WebSocket hand-over swaps it
    proto.makeConnection(transport)
    proto.dataReceived(data)
    raw = transport.value()
    transport.protocol.connectionLost(Failure(ConnectionDone()))
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


class LogCapture:
    """Collects log events of one namespace while a test runs."""

    def __init__(self, case: Any, namespace: str) -> None:
        self.namespace = namespace
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def failures(self) -> list[dict]:
        return [
            e
            for e in self.events
            if "log_failure" in e and e.get("log_namespace") == self.namespace
        ]
