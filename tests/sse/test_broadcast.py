"""Broadcast with memory://: delivery, bounded queues, overflow markers, SSE helper (SPEC §10)."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Broadcast, BroadcastOverflow, SseStream


def run(case: SynchronousTestCase, work) -> object:  # noqa: ANN001
    """The result of a coroutine or Deferred that never waits on the reactor (memory:// never does)."""
    return case.successResultOf(work if isinstance(work, Deferred) else Deferred.fromCoroutine(work))


class MemoryBroadcastTests(SynchronousTestCase):
    def test_subscribers_receive_values_as_published_in_order(self) -> None:
        """§10 r1: str, bytes and dict arrive as published, in order; each subscriber gets its own dict."""
        bc = Broadcast()

        async def scenario() -> list:
            async with bc.subscribe("c") as one, bc.subscribe("c") as two:
                message = {"n": [1, 2]}
                for value in ("text", b"\x00bytes", message):
                    await bc.publish("c", value)
                got = [await one.__anext__() for _ in range(3)]
                got2 = [await two.__anext__() for _ in range(3)]
                self.assertIsNot(got[2], message)
                self.assertIsNot(got[2], got2[2])
                return [got, got2]

        got, got2 = run(self, scenario())
        self.assertEqual(got, ["text", b"\x00bytes", {"n": [1, 2]}])
        self.assertEqual(got2, got)

    def test_messages_before_subscribing_or_on_other_channels_are_not_received(self) -> None:
        """§10 r1: a subscriber receives what is published on its channel after it entered."""
        bc = Broadcast("memory://")

        async def scenario() -> int:
            await bc.publish("c", "early")
            async with bc.subscribe("c") as sub:
                await bc.publish("other", "elsewhere")
                await bc.publish("c", "late")
                self.assertEqual(await sub.__anext__(), "late")
                return sub.pending

        self.assertEqual(run(self, scenario()), 0)

    def test_overflow_drops_oldest_and_marks_the_gap_once(self) -> None:
        """§10 r2: a full queue drops the oldest; one BroadcastOverflow comes before the first message after the gap."""
        bc = Broadcast(queue_size=3)

        async def scenario() -> list:
            async with bc.subscribe("c") as sub:
                for i in range(10):
                    await bc.publish("c", str(i))
                self.assertEqual(sub.pending, 3)
                got = [await sub.__anext__() for _ in range(4)]
                await bc.publish("c", "next")
                got.append(await sub.__anext__())
                return got

        self.assertEqual(run(self, scenario()), [BroadcastOverflow(7), "7", "8", "9", "next"])

    def test_leaving_releases_the_channel(self) -> None:
        """§10 r3: leaving the `async with` removes the subscription; iteration then ends."""
        bc = Broadcast()
        sub = bc.subscribe("c")

        async def scenario() -> list:
            async with sub:
                self.assertEqual(bc.subscribers("c"), 1)
            self.assertEqual(bc.subscribers("c"), 0)
            return [m async for m in sub]

        self.assertEqual(run(self, scenario()), [])

    def test_close_ends_waiting_readers(self) -> None:
        """§10: closing the broadcast (graceful stop) ends every subscription's iteration."""
        bc = Broadcast()
        got: list = []

        async def reader() -> str:
            async with bc.subscribe("c") as sub:
                async for message in sub:
                    got.append(message)
            return "ended"

        d = Deferred.fromCoroutine(reader())
        run(self, bc.publish("c", "one"))
        self.assertNoResult(d)
        bc.close()
        self.assertEqual(self.successResultOf(d), "ended")
        self.assertEqual(got, ["one"])

    def test_bad_arguments(self) -> None:
        """§10: channels are non-empty str, messages str/bytes/JSON dicts, queue sizes positive ints."""
        bc = Broadcast()
        self.assertRaises(TypeError, bc.publish, "", "x")
        self.assertRaises(TypeError, bc.publish, 5, "x")
        self.assertRaises(ValueError, bc.publish, "c" * 2000, "x")
        self.assertRaises(TypeError, bc.publish, "c", 42)
        self.assertRaises(TypeError, bc.publish, "c", {"x": object()})
        self.assertRaises(ValueError, Broadcast, queue_size=0)
        self.assertRaises(ValueError, bc.subscribe, "c", queue_size=True)
        self.assertRaises(ValueError, Broadcast, "http://nope")


class SseFromBroadcastTests(SynchronousTestCase):
    def test_stream_relays_messages_skips_overflow_and_releases_on_disconnect(self) -> None:
        """§10: SseStream.from_broadcast sends each message as an event, skips the marker, leaves on disconnect."""
        app = App()
        app.broadcast = Broadcast(queue_size=2)

        @app.get("/events")
        def news(request):  # noqa: ANN001, ANN202
            return SseStream.from_broadcast(app.broadcast, "news", event="news", ping_interval=None)

        client = app.test_client()
        stream = client.stream("GET", "/events")
        self.assertEqual(stream.status_code, 200)
        self.assertEqual(app.broadcast.subscribers("news"), 1)
        run(self, app.broadcast.publish("news", {"title": "hi"}))
        run(self, app.broadcast.publish("news", b"raw"))
        events = stream.read_events()
        self.assertEqual([(e.event, e.data_text()) for e in events], [("news", '{"title":"hi"}'), ("news", "raw")])
        stream.close()
        self.assertEqual(app.broadcast.subscribers("news"), 0)
