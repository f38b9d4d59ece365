"""Handler timeout (SPEC_OPERATIONS §4 r5, r8): middleware/_timeout.py around compiled chains.

Requests go through the app's real Site as HTTP bytes on an in-memory transport, with
``task.Clock`` as ``app.clock``, so a deadline is reached by advancing the clock while
the request is still pending (the synchronous test client would give up first).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, SseStream
from cello_twisted.errors import ConfigError


class Wire:
    """One HTTP/1.1 connection to ``app.site()`` over a StringTransport."""

    def __init__(self, app: App) -> None:
        site = app.site(reactor=app.clock)
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        self.proto = site.buildProtocol(address)
        self.transport = StringTransport(peerAddress=address)
        self.proto.makeConnection(self.transport)

    def send(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: test"]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.proto.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    @property
    def raw(self) -> bytes:
        return self.transport.value()

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of the one complete response."""
        head, sep, body = self.raw.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"no complete response yet: {self.raw!r}")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, body


@dataclasses.dataclass
class Item:
    name: str


def _json_body(body: bytes) -> Any:
    return json.loads(body)


def _timeout_timers(clock: Clock) -> list[Any]:
    """The handler-timeout timers still pending (Twisted's own idle timers left out)."""
    return [c for c in clock.getDelayedCalls() if getattr(c.func, "__name__", "") == "_expire"]


class HandlerTimeoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[dict] = []

        def observer(event: dict) -> None:
            if str(event.get("log_namespace", "")).startswith("cello_twisted"):
                self.events.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def app(self, **kwargs: Any) -> App:
        return App(clock=self.clock, **kwargs)

    def test_never_firing_deferred_gets_503_at_the_deadline(self) -> None:
        """§4 r5: a Deferred that never fires → 503, standard body, Retry-After: 1, exactly at the deadline."""
        app = self.app(handler_timeout=5)
        app.get("/hang")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang")
        self.clock.advance(4.9)
        self.assertEqual(wire.raw, b"", "nothing is sent before the deadline")
        self.clock.advance(0.1)
        status, headers, body = wire.response()
        self.assertEqual(status, 503)
        self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(
            _json_body(body),
            {"error": "Service Unavailable", "status": 503, "detail": "Request timed out after 5 s"},
        )

    def test_slow_coroutine_sees_cancelled_error(self) -> None:
        """§4 r5: a slow coroutine is cancelled at the deadline (it sees CancelledError); N uses %g."""
        app = self.app()
        seen: list[str] = []

        @app.get("/slow", timeout=1.5)
        async def slow(request: Any) -> Any:
            try:
                await deferLater(app.clock, 60, lambda: None)
            except CancelledError:
                seen.append("cancelled")
                raise
            return {"never": True}

        wire = Wire(app)
        wire.send("GET", "/slow")
        self.clock.advance(1.5)
        status, _, body = wire.response()
        self.assertEqual(status, 503)
        self.assertEqual(_json_body(body)["detail"], "Request timed out after 1.5 s")
        self.assertEqual(seen, ["cancelled"])
        self.clock.advance(60)  # the cancelled timer never fires the handler again
        self.assertEqual(wire.raw.count(b"HTTP/1.1"), 1)

    def test_cancellation_swallowed_is_cancelled_again(self) -> None:
        """§4 r5: a coroutine that swallows CancelledError and waits on is cancelled again one period later."""
        app = self.app(handler_timeout=1)
        seen: list[str] = []

        @app.get("/stubborn")
        async def stubborn(request: Any) -> Any:
            try:
                await Deferred()
            except CancelledError:
                seen.append("first")
            await Deferred()  # ignores the first cancellation
            return {"never": True}

        wire = Wire(app)
        wire.send("GET", "/stubborn")
        self.clock.advance(1)
        self.assertEqual((seen, wire.raw), (["first"], b""))
        self.clock.advance(1)
        status, _, body = wire.response()
        self.assertEqual((status, _json_body(body)["detail"]), (503, "Request timed out after 1 s"))
        self.assertEqual(_timeout_timers(self.clock), [])

    def test_fast_handler_is_not_affected(self) -> None:
        """§4 r5: a response produced before the deadline is sent as is; no timer is left behind."""
        app = self.app(handler_timeout=5)

        @app.get("/quick")
        async def quick(request: Any) -> Any:
            await deferLater(app.clock, 1, lambda: None)
            return {"ok": True}

        wire = Wire(app)
        wire.send("GET", "/quick")
        self.clock.advance(1)
        self.assertEqual(wire.response()[0], 200)
        self.assertEqual(_timeout_timers(self.clock), [])

    def test_middleware_headers_on_the_503(self) -> None:
        """§4 r5: the 503 passes out through middleware that ran: CORS, security headers, user middleware, logging."""
        app = self.app(handler_timeout=2)
        app.enable_logging(colors=False)
        app.enable_cors(origins=["https://web.example"])
        app.enable_security_headers()

        @app.middleware
        async def tag(request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["X-Tagged"] = "yes"
            return response

        app.get("/hang")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang", {"Origin": "https://web.example"})
        self.clock.advance(2)
        status, headers, _ = wire.response()
        self.assertEqual(status, 503)
        self.assertEqual(headers["access-control-allow-origin"], "https://web.example")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["x-tagged"], "yes")
        access = [e for e in self.events if e.get("log_namespace") == "cello_twisted.access"]
        self.assertEqual([(e["path"], e["status"]) for e in access], [("/hang", 503)])

    def test_slow_middleware_before_call_next_is_timed_too(self) -> None:
        """§4 r5: the clock covers the middleware chain: a middleware stuck before call_next → 503."""
        app = self.app(handler_timeout=3)
        app.enable_cors(origins=["https://web.example"])
        cancelled: list[bool] = []

        @app.middleware
        async def stuck(request: Any, call_next: Any) -> Any:
            try:
                await Deferred()
            except CancelledError:
                cancelled.append(True)
                raise
            return await call_next(request)

        app.get("/x")(lambda request: {"ok": True})
        wire = Wire(app)
        wire.send("GET", "/x", {"Origin": "https://web.example"})
        self.clock.advance(3)
        status, headers, _ = wire.response()
        self.assertEqual((status, cancelled), (503, [True]))
        self.assertEqual(headers["access-control-allow-origin"], "https://web.example")

    def test_route_timeout_overrides_app(self) -> None:
        """§4 r5: a route's timeout= wins over App(handler_timeout=), shorter or longer; blueprints too."""
        app = self.app(handler_timeout=10)
        app.get("/short", timeout=1)(lambda request: Deferred())
        app.get("/long", timeout=30)(lambda request: Deferred())
        app.get("/default")(lambda request: Deferred())
        bp = Blueprint("/bp")
        bp.get("/r", timeout=2)(lambda request: Deferred())
        app.register_blueprint(bp)
        wires = {path: Wire(app) for path in ("/short", "/long", "/default", "/bp/r")}
        for path, wire in wires.items():
            wire.send("GET", path)
        done_at: dict[str, int] = {}
        for second in range(1, 31):
            self.clock.advance(1)
            for path, wire in wires.items():
                if path not in done_at and wire.raw:
                    done_at[path] = second
        self.assertEqual(done_at, {"/short": 1, "/bp/r": 2, "/default": 10, "/long": 30})
        self.assertTrue(all(w.response()[0] == 503 for w in wires.values()))

    def test_no_timeout_means_no_timer(self) -> None:
        """§4 r5: without handler_timeout or timeout= a pending request schedules nothing and waits."""
        app = self.app()
        app.get("/hang")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang")
        self.assertEqual(_timeout_timers(self.clock), [])
        self.clock.advance(3600)
        self.assertEqual(wire.raw, b"")

    def test_infinite_route_timeout_opts_out(self) -> None:
        """§4 r5: timeout=math.inf on a route lifts the app's handler_timeout for that route only."""
        import math

        app = self.app(handler_timeout=1)
        app.get("/export", timeout=math.inf)(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/export")
        self.clock.advance(3600)
        self.assertEqual((wire.raw, _timeout_timers(self.clock)), (b"", []))

    def test_head_uses_the_get_routes_timeout(self) -> None:
        """§4 r5: HEAD runs the GET handler, with the GET route's timeout."""
        app = self.app()
        app.get("/hang", timeout=2)(lambda request: Deferred())
        wire = Wire(app)
        wire.send("HEAD", "/hang")
        self.clock.advance(2)
        self.assertIn(b"503", wire.raw.split(b"\r\n")[0])

    def test_stream_is_timed_only_until_headers(self) -> None:
        """§4 r5: an SSE stream whose headers went out is not cut by the timeout."""
        app = self.app(handler_timeout=1)

        async def events() -> Any:
            yield "first"
            await deferLater(app.clock, 10, lambda: None)
            yield "later"

        app.get("/events")(lambda request: SseStream(events(), ping_interval=None))
        wire = Wire(app)
        wire.send("GET", "/events")
        self.assertIn(b"200 OK", wire.raw)
        self.clock.advance(10)
        self.assertIn(b"data: later", wire.raw)
        self.assertNotIn(b"503", wire.raw)

    def test_stream_slow_to_start_is_timed_out(self) -> None:
        """§4 r5: a streaming handler that has not produced its headers by the deadline gets 503."""
        app = self.app(handler_timeout=1)

        @app.get("/events")
        async def slow_start(request: Any) -> Any:
            await deferLater(app.clock, 5, lambda: None)
            return SseStream(["x"])

        wire = Wire(app)
        wire.send("GET", "/events")
        self.clock.advance(1)
        self.assertEqual(wire.response()[0], 503)

    def test_file_response_is_not_cut(self) -> None:
        """§4 r5: a file response is timed until its headers; the body is sent whatever the timeout."""
        import os
        import tempfile

        fd, path = tempfile.mkstemp()
        os.write(fd, b"x" * 200_000)
        os.close(fd)
        self.addCleanup(os.remove, path)
        from cello_twisted import Response

        app = self.app(handler_timeout=1)
        app.get("/file")(lambda request: Response.file(path))
        wire = Wire(app)
        wire.send("GET", "/file")
        self.clock.advance(5)
        status, headers, _ = wire.response()
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-length"], "200000")
        self.assertNotIn(b"503", wire.raw)

    def test_threaded_late_result_is_discarded_and_logged_once(self) -> None:
        """§4 r5: a threaded handler can't be interrupted: 503 at the deadline, its late result dropped, one log per route."""
        app = self.app(handler_timeout=2)
        pool: list[Deferred] = []

        def fake_pool(fn: Any, *args: Any) -> Deferred:  # a thread that has not finished yet
            d: Deferred = Deferred()
            pool.append(d)
            return d

        app.run_blocking = fake_pool  # type: ignore[method-assign]
        app.get("/work", threaded=True)(lambda request: {"done": True})
        first, second = Wire(app), Wire(app)
        first.send("GET", "/work")
        second.send("GET", "/work")
        self.clock.advance(2)
        self.assertEqual((first.response()[0], second.response()[0]), (503, 503))
        for d in pool:
            d.callback({"done": True})  # the threads finish late
        self.assertEqual(first.raw.count(b"HTTP/1.1"), 1)
        self.assertNotIn(b"done", first.raw)
        late = [e for e in self.events if e.get("log_namespace") == "cello_twisted.timeout"]
        self.assertEqual(len(late), 1)
        self.assertEqual(late[0]["route"], "GET /work")

    def test_websocket_upgrade_guard_is_timed(self) -> None:
        """§4 r5: a WebSocket route is timed until its handshake answer: a hung guard → 503."""
        app = self.app(handler_timeout=1)

        async def hung_guard(request: Any) -> Any:
            await Deferred()

        @app.websocket("/ws", guards=[hung_guard])
        async def ws(socket: Any) -> None:
            pass

        wire = Wire(app)
        wire.send(
            "GET",
            "/ws",
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        self.clock.advance(1)
        self.assertEqual(wire.response()[0], 503)

    def test_app_timeout_covers_404_middleware(self) -> None:
        """§4 r5: requests matching no route still run app middleware; the app's timeout covers them."""
        app = self.app(handler_timeout=1)

        @app.middleware
        async def stuck(request: Any, call_next: Any) -> Any:
            await Deferred()

        wire = Wire(app)
        wire.send("GET", "/nowhere")
        self.clock.advance(1)
        self.assertEqual(wire.response()[0], 503)

    def test_typed_body_route_is_timed(self) -> None:
        """§4 r5 with typed bodies: a body= route whose handler hangs gets 503 at its timeout=;
        a bad body is still 400 at once (validation runs inside the timed chain)."""
        app = self.app()
        seen: list[Any] = []

        async def create(request: Any) -> Any:
            seen.append(request.validated)
            await Deferred()

        app.post("/items", body=Item, timeout=2)(create)
        wire = Wire(app)
        wire.send("POST", "/items", {"Content-Type": "application/json"}, b'{"name": "a"}')
        self.clock.advance(1.9)
        self.assertEqual(wire.raw, b"")
        self.clock.advance(0.1)
        self.assertEqual(wire.response()[0], 503)
        self.assertEqual(seen, [Item("a")])
        bad = Wire(app)
        bad.send("POST", "/items", {"Content-Type": "application/json"}, b'{"name": 5}')
        self.assertIn(bad.response()[0], (400, 422))
        self.assertEqual(_timeout_timers(self.clock), [])

    def test_mount_chain_is_timed(self) -> None:
        """§4 r5 with mounts: the app's handler_timeout covers a mounted resource's chain (a hung
        mount guard → 503 at the deadline); a mount whose chain answers is served as usual."""
        from twisted.web.static import Data

        app = self.app(handler_timeout=3)

        async def hung_guard(request: Any) -> Any:
            await Deferred()

        app.mount("/stuck", Data(b"never", "text/plain"), guards=[hung_guard])
        app.mount("/open", Data(b"hello", "text/plain"))
        stuck = Wire(app)
        stuck.send("GET", "/stuck")
        self.clock.advance(2.9)
        self.assertEqual(stuck.raw, b"")
        self.clock.advance(0.1)
        self.assertEqual(stuck.response()[0], 503)
        served = Wire(app)
        served.send("GET", "/open")
        status, _, body = served.response()
        self.assertEqual((status, body), (200, b"hello"))
        self.assertEqual(_timeout_timers(self.clock), [])

    def test_disconnect_still_cancels_quietly(self) -> None:
        """§2.5 r3 with a timeout: a client leaving cancels the work and the timer; nothing is written."""
        app = self.app(handler_timeout=5)
        app.get("/hang")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang")
        self.assertEqual(len(_timeout_timers(self.clock)), 1)
        wire.proto.connectionLost(Exception("gone"))
        self.assertEqual(_timeout_timers(self.clock), [])
        self.assertEqual(wire.raw, b"")

    def test_bad_values_are_config_errors(self) -> None:
        """§4 r5: timeouts must be positive numbers (or None); anything else fails at construction."""
        for bad in (0, -1, "5", True, float("nan")):
            with self.assertRaises(ConfigError):
                App(handler_timeout=bad)
            app = App()
            with self.assertRaises(ConfigError):
                app.get("/x", timeout=bad)(lambda request: "x")
