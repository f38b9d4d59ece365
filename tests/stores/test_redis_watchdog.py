"""The Redis connection's watchdog: late replies are read before a connection is declared dead."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.stores._redis_protocol import RedisConnectionError, RedisProtocol

TIMEOUT = 1.0


class WatchdogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.proto = RedisProtocol(self.clock, TIMEOUT)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.results: list[Any] = []

    def send(self) -> None:
        self.proto.execute(["PING"]).addBoth(self.results.append)

    def test_a_reply_read_just_after_the_deadline_succeeds(self) -> None:
        """Deadline reached with the reply still unread (busy reactor) -> the reply is used, the connection stays."""
        self.send()
        self.clock.advance(TIMEOUT)  # the watchdog runs before the reactor reads the socket
        self.assertFalse(self.transport.disconnecting)
        self.proto.dataReceived(b"+PONG\r\n")
        self.clock.advance(1)
        self.assertEqual(self.results, [b"PONG"])
        self.assertFalse(self.transport.disconnecting)

    def test_a_silent_server_fails_within_the_timeout_plus_the_grace(self) -> None:
        """No reply at all -> the connection is dropped 0.1 s after the timeout (every waiter fails)."""
        self.send()
        self.send()
        self.clock.advance(TIMEOUT)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnecting)
        self.proto.connectionLost(None)
        self.assertEqual(len(self.results), 2)
        for result in self.results:
            self.assertIsInstance(result.value, RedisConnectionError)
            self.assertIn("no reply in time", str(result.value))

    def test_replies_that_keep_coming_extend_the_grace_but_not_forever(self) -> None:
        """Overdue commands answered one by one stay alive; an overdue command is failed at twice the timeout."""
        for _ in range(30):
            self.send()
        self.clock.advance(TIMEOUT)
        for _ in range(5):  # progress during each grace: no drop
            self.proto.dataReceived(b"+PONG\r\n")
            self.clock.advance(0.1)
            self.assertFalse(self.transport.disconnecting)
        for _ in range(6):
            self.proto.dataReceived(b"+PONG\r\n")
            self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.results[:11], [b"PONG"] * 11)
