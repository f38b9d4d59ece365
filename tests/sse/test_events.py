"""SseEvent wire format and SseStream API (SPEC §2.18 r1, r6, errors)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import Response, SseEvent, SseStream
from cello_twisted.response import to_response
from cello_twisted.testing._sse import parse_events


class SseEventFormatTests(SynchronousTestCase):
    def test_field_order(self) -> None:
        """§2.18 r1: id, event, retry lines (those set, in that order), data, blank line."""
        ev = SseEvent("hi", event="update", id="7", retry=3000)
        self.assertEqual(ev.to_sse_string(), "id: 7\nevent: update\nretry: 3000\ndata: hi\n\n")

    def test_only_set_fields(self) -> None:
        """§2.18 r1: unset fields produce no line."""
        self.assertEqual(SseEvent("x").to_sse_string(), "data: x\n\n")
        self.assertEqual(SseEvent("x", retry=0).to_sse_string(), "retry: 0\ndata: x\n\n")

    def test_multiline_data_every_break(self) -> None:
        """§2.18 r1: one data line per line, splitting on CRLF, CR and LF."""
        ev = SseEvent("a\r\nb\rc\nd")
        self.assertEqual(ev.to_sse_string(), "data: a\ndata: b\ndata: c\ndata: d\n\n")

    def test_non_str_data_is_json(self) -> None:
        """§2.18 r1: non-str data is JSON-encoded (UTF-8, compact)."""
        self.assertEqual(SseEvent({"n": 1, "s": "é"}).to_sse_string(), 'data: {"n":1,"s":"é"}\n\n')
        self.assertEqual(SseEvent([1, 2]).encode(), b"data: [1,2]\n\n")

    def test_encode_is_utf8(self) -> None:
        """§2.18 r1: encode() is the UTF-8 bytes of to_sse_string()."""
        ev = SseEvent("ünï", event="e")
        self.assertEqual(ev.encode(), ev.to_sse_string().encode("utf-8"))

    def test_round_trip_through_parser(self) -> None:
        """§2.18 r1: the format is what an EventSource parser reads back."""
        sent = [SseEvent("a\nb", event="x", id="1", retry=10), SseEvent({"k": "v"})]
        events, rest = parse_events("".join(e.to_sse_string() for e in sent) + ": ping\n\n")
        self.assertEqual(rest, "")
        self.assertEqual(events[0], SseEvent("a\nb", event="x", id="1", retry=10))
        self.assertEqual(events[1].data, '{"k":"v"}')


class SseEventApiTests(SynchronousTestCase):
    def test_data_factory_on_class(self) -> None:
        """§2.18 r6: SseEvent.data(...) on the class is a factory."""
        ev = SseEvent.data("payload")
        self.assertIsInstance(ev, SseEvent)
        self.assertEqual(ev.to_sse_string(), "data: payload\n\n")

    def test_data_on_instance_is_payload(self) -> None:
        """§2.18 r6: event.data on an instance is the payload."""
        self.assertEqual(SseEvent({"a": 1}).data, {"a": 1})
        self.assertEqual(SseEvent.data("p").data, "p")

    def test_with_event(self) -> None:
        """§2.18: SseEvent.with_event(event, data) sets the type."""
        ev = SseEvent.with_event("tick", 3)
        self.assertEqual((ev.event, ev.data), ("tick", 3))

    def test_newline_in_event_or_id(self) -> None:
        """§2.18 errors: a newline in event or id is a ValueError."""
        for kwargs in ({"event": "a\nb"}, {"event": "a\rb"}, {"id": "1\n2"}):
            with self.assertRaises(ValueError):
                SseEvent("x", **kwargs)

    def test_bad_retry(self) -> None:
        """§2.18 errors: retry must be a non-negative int."""
        for retry in (-1, 1.5, "10", True):
            with self.assertRaises(ValueError):
                SseEvent("x", retry=retry)


class SseStreamApiTests(SynchronousTestCase):
    def test_add_methods_and_len(self) -> None:
        """§2.18: add/add_data/add_event, len(), is_empty()."""
        s = SseStream()
        self.assertTrue(s.is_empty())
        s.add(SseEvent("a")).add_data({"b": 1}).add_event("c", "d")
        s.add({"data": "e", "id": "5"})
        s.add("f")
        self.assertEqual((s.len(), len(s), s.is_empty()), (5, 5, False))
        self.assertEqual([e.event for e in s.events], [None, None, "c", None, None])
        self.assertEqual(s.events[3].id, "5")

    def test_add_rejects_other_types(self) -> None:
        """§2.18 r3: items are SseEvent, dict or str only."""
        with self.assertRaises(TypeError):
            SseStream().add(42)

    def test_returned_stream_converts(self) -> None:
        """§2.3 r7: a returned SseStream becomes an SSE response."""
        resp = to_response(SseStream())
        self.assertEqual(resp.content_type, "text/event-stream")
        self.assertIsNotNone(resp.streamer)

    def test_response_sse_factory(self) -> None:
        """§2.3: Response.sse(stream, status, headers) keeps status and extra headers."""
        resp = Response.sse(SseStream(), status=201, headers={"X-Extra": "1"})
        self.assertEqual((resp.status, resp.headers.get("x-extra")), (201, "1"))
        self.assertEqual(resp.headers.get("cache-control"), "no-cache")
        self.assertEqual(resp.headers.get("x-accel-buffering"), "no")

    def test_bad_ping_interval(self) -> None:
        """§2.18 r4: ping_interval is positive seconds or None."""
        SseStream(ping_interval=None)
        with self.assertRaises(ValueError):
            SseStream(ping_interval=0)

    def test_source_must_iterate(self) -> None:
        """§2.18 r3: the source is an iterable or async iterable."""
        with self.assertRaises(TypeError):
            SseStream(42)
