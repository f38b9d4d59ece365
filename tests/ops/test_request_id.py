"""Request IDs (SPEC_OPERATIONS §5): kept, replaced, generated; on every response and log line."""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from cello_twisted import App, HTTPError, JwtConfig, RateLimitConfig
from cello_twisted.errors import ConfigError
from tests.middleware.test_timeout import Wire

HEX32 = re.compile(r"[0-9a-f]{32}")
SECRET = "s" * 40


def _app(**kwargs: Any) -> App:
    app = App()
    app.enable_request_id(**kwargs)

    @app.get("/id")
    def show(request: Any) -> dict[str, Any]:
        return {"id": request.id}

    return app


class _Events:
    """Collects twisted.logger events of one namespace while a test runs."""

    def __init__(self, case: SynchronousTestCase, namespace: str) -> None:
        self.events: list[dict[str, Any]] = []

        def observer(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == namespace:
                self.events.append(event)

        globalLogPublisher.addObserver(observer)
        case.addCleanup(globalLogPublisher.removeObserver, observer)


class IncomingIdTests(SynchronousTestCase):
    def test_valid_incoming_id_is_kept(self) -> None:
        """r1-r2: a valid incoming X-Request-ID is request.id and comes back in the response header."""
        client = _app().test_client()
        for value in ("abc-123", "a", "x" * 128, "A.b_c:d+e/f=g-h"):
            resp = client.get("/id", headers={"X-Request-ID": value})
            self.assertEqual(resp.json(), {"id": value})
            self.assertEqual(resp.headers.get("X-Request-ID"), value)

    def test_invalid_or_too_long_id_is_replaced(self) -> None:
        """r1: a value with other characters, or longer than 128, is replaced by a fresh uuid4 hex."""
        client = _app().test_client()
        for value in ("has space", "x" * 129, "semi;colon", "quote\"", "ünïcode", "<script>"):
            resp = client.get("/id", headers={"X-Request-ID": value})
            made = resp.json()["id"]
            self.assertRegex(made, HEX32)
            self.assertNotEqual(made, value)
            self.assertEqual(resp.headers.get("X-Request-ID"), made)

    def test_missing_id_is_generated_fresh_each_time(self) -> None:
        """r1: without the header every request gets its own 32-hex id."""
        client = _app().test_client()
        first = client.get("/id").json()["id"]
        second = client.get("/id").json()["id"]
        self.assertRegex(first, HEX32)
        self.assertRegex(second, HEX32)
        self.assertNotEqual(first, second)

    def test_generated_ids_are_random_version_4_uuids_across_batches(self) -> None:
        """r1: default IDs are uuid4 hex (version 4, RFC 4122 variant), all distinct over several batches."""
        import uuid

        client = _app().test_client()
        made = [client.get("/id").json()["id"] for _ in range(600)]  # IDs are drawn 256 at a time
        self.assertEqual(len(set(made)), 600)
        for value in made:
            parsed = uuid.UUID(value)
            self.assertEqual((parsed.version, parsed.variant, parsed.hex), (4, uuid.RFC_4122, value))

    def test_the_id_as_text_and_as_sent(self) -> None:
        """request.id is the text of request.id_bytes (the header's bytes); the public generators agree."""
        import uuid

        from cello_twisted.ops.request_id import new_id, new_id_bytes

        app = App()
        app.enable_request_id()
        app.get("/both")(lambda r: {"id": r.id, "sent": r.id_bytes.decode("ascii")})
        resp = app.test_client().get("/both")
        self.assertEqual(resp.json()["id"], resp.json()["sent"])
        self.assertEqual(resp.headers.get("X-Request-ID"), resp.json()["id"])
        made = [new_id() for _ in range(300)] + [new_id_bytes().decode("ascii") for _ in range(300)]
        self.assertEqual(len(set(made)), 600)
        for value in made:
            self.assertEqual(uuid.UUID(value).version, 4)
            self.assertRegex(value, HEX32)

    def test_untrusted_incoming_is_always_replaced(self) -> None:
        """r1: trust_incoming=False ignores even a valid incoming value."""
        client = _app(trust_incoming=False).test_client()
        resp = client.get("/id", headers={"X-Request-ID": "client-chosen"})
        self.assertRegex(resp.json()["id"], HEX32)

    def test_custom_header_and_generator(self) -> None:
        """The header name and the generator are configurable."""
        counter = iter(range(100))
        client = _app(header="X-Correlation-ID", generator=lambda: f"req-{next(counter)}").test_client()
        resp = client.get("/id")
        self.assertEqual(resp.json(), {"id": "req-0"})
        self.assertEqual(resp.headers.get("X-Correlation-ID"), "req-0")
        self.assertIsNone(resp.headers.get("X-Request-ID"))
        kept = client.get("/id", headers={"X-Correlation-ID": "mine"})
        self.assertEqual(kept.json(), {"id": "mine"})

    def test_bad_configuration_is_refused(self) -> None:
        """Principles: a header name that is not a token, or a non-callable generator → ConfigError."""
        app = App()
        with self.assertRaises(ConfigError):
            app.enable_request_id(header="Bad Header")
        with self.assertRaises(ConfigError):
            app.enable_request_id(generator="nope")  # type: ignore[arg-type]


class ErrorResponseTests(SynchronousTestCase):
    def _check(self, resp: Any, status: int) -> None:
        self.assertEqual(resp.status_code, status)
        rid = resp.headers.get("X-Request-ID")
        self.assertIsNotNone(rid)
        self.assertEqual(resp.json()["request_id"], rid)

    def _framework_errors(self, **request_id: Any) -> None:
        app = App()
        app.enable_jwt(JwtConfig(secret=SECRET), required=False)
        app.enable_rate_limit(RateLimitConfig(requests=1, window=60))
        app.enable_request_id(**request_id)

        @app.get("/boom")
        def boom(request: Any) -> None:
            raise RuntimeError("bad")

        @app.get("/teapot")
        def teapot(request: Any) -> None:
            raise HTTPError(418, "short and stout")

        @app.get("/me")
        def me(request: Any) -> Any:
            return request.jwt_claims

        @app.get("/admin", guards=[lambda request: False])
        def admin(request: Any) -> str:
            return "ok"

        cases = [("GET", "/missing", 404), ("POST", "/boom", 405), ("GET", "/boom", 500),
                 ("GET", "/teapot", 418), ("GET", "/me", 401), ("GET", "/admin", 403),
                 ("GET", "/%ff", 400)]  # fmt: skip
        for method, path, status in cases:
            client = app.test_client(client_ip=f"10.0.0.{status % 250}")  # own rate-limit bucket each
            self._check(client.request(method, path), status)
        limited = app.test_client(client_ip="10.9.9.9")
        limited.get("/missing")
        self._check(limited.get("/missing"), 429)
        self.flushLoggedErrors(RuntimeError)

    def test_framework_errors_carry_the_id_in_header_and_body(self) -> None:
        """r2-r3: 400, 404, 405, 500, HTTPError, 401 (JWT), 403 (guard) and 429 carry the header and
        "request_id" (default IDs are taken as the request is built, before any chain)."""
        self._framework_errors()

    def test_with_a_custom_generator_too(self) -> None:
        """r2-r3: the same errors carry a custom generator's ID (it runs as the outermost link)."""
        counter = iter(range(1000))
        self._framework_errors(generator=lambda: f"gen-{next(counter)}")

    def test_middleware_error_carries_the_id(self) -> None:
        """r2: a user middleware that raises still yields a 500 with the id (request ID is outermost)."""
        app = App()

        @app.middleware
        def broken(request: Any, call_next: Any) -> Any:
            raise ValueError("middleware bug")

        app.enable_request_id()  # enabled after: still outermost
        app.get("/")(lambda r: "ok")
        resp = app.test_client().get("/", headers={"X-Request-ID": "trace-1"})
        self.assertEqual(resp.status_code, 500)
        self.assertEqual(resp.headers.get("X-Request-ID"), "trace-1")
        self.assertEqual(resp.json()["request_id"], "trace-1")
        self.flushLoggedErrors(ValueError)

    def test_500_log_text_names_the_request(self) -> None:
        """r3: the unhandled-error log event's text includes request_id=<id>."""
        errors = _Events(self, "cello_twisted.errors")
        app = _app()

        @app.get("/boom")
        def boom(request: Any) -> None:
            raise RuntimeError("bad")

        app.test_client().get("/boom", headers={"X-Request-ID": "err-42"})
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors.events), 1)
        self.assertIn("request_id=err-42", formatEvent(errors.events[0]))

    def test_access_log_event_and_text_end_with_the_id(self) -> None:
        """r3: access-log events carry request_id and their text ends with it."""
        access = _Events(self, "cello_twisted.access")
        app = _app()
        app.enable_logging(colors=False)
        app.test_client().get("/id", headers={"X-Request-ID": "log-7"})
        app.test_client().get("/nowhere", headers={"X-Request-ID": "log-8"})
        self.assertEqual([e["request_id"] for e in access.events], ["log-7", "log-8"])
        self.assertTrue(formatEvent(access.events[0]).endswith(" log-7"))
        self.assertTrue(formatEvent(access.events[1]).endswith(" log-8"))


class WhereTheIdIsTakenTests(SynchronousTestCase):
    def test_identified_request_sets_what_request_sets(self) -> None:
        """The class that takes default IDs repeats Request's constructor: it must set the same
        attributes, plus the ID, and place the header in the Twisted request's response headers."""
        from twisted.web.test.requesthelper import DummyRequest

        from cello_twisted.ops.request_id import RequestId
        from cello_twisted.request import Request

        identified = RequestId().request_class()
        assert identified is not None
        raw = DummyRequest([b"x"])
        plain = vars(Request(raw, App(), "GET", "/x", "/root"))
        built = vars(identified(raw, App(), "GET", "/x", "/root"))
        made = built.pop("id_bytes")
        self.assertEqual(built.keys(), plain.keys())
        self.assertEqual([built[k] for k in built if k != "app"], [plain[k] for k in plain if k != "app"])
        self.assertRegex(made.decode("ascii"), HEX32)
        self.assertEqual(raw.responseHeaders.getRawHeaders(b"x-request-id"), [made])

    def test_a_blueprint_level_request_id_still_works_as_a_link(self) -> None:
        """RequestId used as a blueprint's middleware (a second header) runs in that blueprint's chains."""
        from cello_twisted import Blueprint
        from cello_twisted.ops.request_id import RequestId

        app = _app()
        bp = Blueprint("/traced")
        bp.use(RequestId(header="X-Trace-ID", trust_incoming=False))
        bp.get("/x")(lambda request: {"id": request.id})
        app.register_blueprint(bp)
        client = app.test_client()
        inside = client.get("/traced/x", headers={"X-Request-ID": "outer", "X-Trace-ID": "ignored"})
        trace = inside.headers.get("X-Trace-ID") or ""
        self.assertRegex(trace, HEX32)
        self.assertEqual(inside.headers.get("X-Request-ID"), "outer")
        self.assertEqual(inside.json(), {"id": trace})  # the inner layer sets request.id last
        outside = client.get("/id", headers={"X-Request-ID": "outer"})
        self.assertEqual((outside.json(), outside.headers.get("X-Trace-ID")), ({"id": "outer"}, None))


class OffTests(SynchronousTestCase):
    def test_off_means_none_and_nothing_changes(self) -> None:
        """r4: without enable_request_id, request.id is None, no header, no body field, no log field."""
        access = _Events(self, "cello_twisted.access")
        app = App()
        app.enable_logging(colors=False)
        app.get("/id")(lambda r: {"id": r.id})
        client = app.test_client()
        resp = client.get("/id", headers={"X-Request-ID": "ignored"})
        self.assertEqual(resp.json(), {"id": None})
        self.assertIsNone(resp.headers.get("X-Request-ID"))
        missing = client.get("/missing")
        self.assertEqual(missing.json(), {"error": "Not Found", "status": 404, "path": "/missing"})
        self.assertNotIn("request_id", access.events[0])
        self.assertTrue(formatEvent(access.events[0]).endswith("127.0.0.1"))


class GeneratorTests(SynchronousTestCase):
    def test_a_generator_returning_an_invalid_id_is_a_logged_500(self) -> None:
        """A generator whose value breaks the id rule never reaches a header: a 500, logged with the reason."""
        client = _app(generator=lambda: "not valid\r\nX-Evil: 1").test_client()
        resp = client.get("/id")
        self.assertEqual(resp.status_code, 500)
        self.assertIsNone(resp.headers.get("X-Evil"))
        self.assertIsNone(resp.headers.get("X-Request-ID"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class _Where(Resource):
    """A mounted twisted.web leaf answering with the path it was given."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"/".join(request.postpath)


class _Raising(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        raise ValueError("resource exploded")


class PassingTheChainTests(SynchronousTestCase):
    def test_mounted_resource_response_carries_the_id(self) -> None:
        """r2, §13 r3: a mounted resource's response has the kept or generated ID; its 500 body names it."""
        app = App()
        app.enable_request_id()
        app.mount("/legacy", _Where())
        app.mount("/broken", _Raising())
        client = app.test_client()
        kept = client.get("/legacy/a/b", headers={"X-Request-ID": "from-the-proxy"})
        self.assertEqual((kept.status_code, kept.text), (200, "a/b"))
        self.assertEqual(kept.headers.get("X-Request-ID"), "from-the-proxy")
        made = client.get("/legacy/c")
        self.assertRegex(made.headers.get("X-Request-ID") or "", HEX32)
        failed = client.get("/broken", headers={"X-Request-ID": "r-500"})
        self.assertEqual(failed.status_code, 500)
        self.assertEqual(failed.headers.get("X-Request-ID"), "r-500")
        self.assertEqual(failed.json()["request_id"], "r-500")
        self.flushLoggedErrors(ValueError)

    def test_handler_timeout_503_carries_the_id(self) -> None:
        """r2, §4 r5: the handler-timeout 503 passes the chain outward, so it has the header and "request_id"."""
        clock = Clock()
        app = App(clock=clock, handler_timeout=2)
        app.enable_request_id()
        app.get("/hang")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang", {"X-Request-ID": "slow-one"})
        clock.advance(2)
        status, headers, body = wire.response()
        self.assertEqual(status, 503)
        self.assertEqual(headers["x-request-id"], "slow-one")
        self.assertEqual(json.loads(body)["request_id"], "slow-one")


class HeaderPlacementTests(SynchronousTestCase):
    def test_streamed_and_head_responses_carry_the_id(self) -> None:
        """r2: an SSE stream's head and a HEAD response carry the ID like any other response."""
        from cello_twisted import SseStream

        app = _app()

        @app.get("/events")
        def events(request: Any) -> Any:
            return SseStream().add_data("one")

        client = app.test_client()
        streamed = client.get("/events", headers={"X-Request-ID": "sse-1"})
        self.assertEqual(streamed.headers.get("X-Request-ID"), "sse-1")
        self.assertIn("data: one", streamed.text)
        head = client.head("/id", headers={"X-Request-ID": "head-1"})
        self.assertEqual((head.status_code, head.headers.get("X-Request-ID"), head.text), (200, "head-1", ""))

    def test_a_handler_setting_the_header_itself_wins(self) -> None:
        """r2 (documented choice): a handler that sets the ID header on its response sends its own value."""
        from cello_twisted import Response

        app = _app()

        @app.get("/own")
        def own(request: Any) -> Response:
            response = Response.json({"id": request.id})
            response.headers.set("X-Request-ID", "upstream-7")
            return response

        answer = app.test_client().get("/own", headers={"X-Request-ID": "mine"})
        self.assertEqual(answer.json(), {"id": "mine"})
        self.assertEqual(answer.headers.get("X-Request-ID"), "upstream-7")
