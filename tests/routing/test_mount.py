"""Mounted resources and handler-returned resources, in memory (SPEC_OPERATIONS §13).

Resources here are plain ``twisted.web`` resources rendering synchronously or
through a Deferred; files, WSGI, proxies and Klein are exercised over real
sockets in test_mount_live.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.util import DeferredResource

from cello_twisted import App, Blueprint, RateLimitConfig, StaticFilesConfig
from cello_twisted.errors import ForbiddenError
from cello_twisted.routing._handoff import route_shape, split_at

from ._helpers import make_app


class Where(Resource):
    """A leaf answering with what Twisted's traversal gave it."""

    isLeaf = True

    def __init__(self, name: str = "where") -> None:
        super().__init__()
        self.name = name

    def render(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(
            {
                "name": self.name,
                "method": request.method.decode(),
                "prepath": [s.decode() for s in request.prepath],
                "postpath": [s.decode() for s in request.postpath],
                "body": request.content.read().decode() if request.content is not None else None,
            }
        ).encode()


class Tree(Resource):
    """A non-leaf root with one child, traversed by Twisted's getChildForRequest."""

    def __init__(self) -> None:
        super().__init__()
        self.putChild(b"child", Where("child"))

    def render_GET(self, request: Any) -> bytes:
        return b"tree root"


class Raising(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        raise ValueError("resource exploded")


class Later(Resource):
    """Renders through NOT_DONE_YET and a Deferred the test fires."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Any] = []

    def render(self, request: Any) -> Any:
        self.pending.append(request)
        return NOT_DONE_YET


def _errors_logged(case: SynchronousTestCase) -> list[Any]:
    events: list[Any] = []
    globalLogPublisher.addObserver(events.append)
    case.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class MountRegistrationTests(SynchronousTestCase):
    def test_mount_needs_a_resource_and_a_path(self) -> None:
        """§13 r1: mount() refuses non-resources, relative paths and parameters in the prefix."""
        app = App()
        self.assertRaises(TypeError, app.mount, "/x", object())
        self.assertRaises(ValueError, app.mount, "x", Where())
        self.assertRaises(ValueError, app.mount, "/x/{id}", Where())
        self.assertRaises(TypeError, app.mount, "/x", Where(), guards=["not callable"])

    def test_same_prefix_twice_is_refused(self) -> None:
        """Two resources at one prefix (through blueprints too) is a registration error."""
        app = App()
        app.mount("/api/legacy/", Where())
        self.assertRaises(ValueError, app.mount, "/api/legacy", Where())
        bp = Blueprint("/api")
        bp.mount("/legacy", Where())
        self.assertRaises(ValueError, app.register_blueprint, bp)

    def test_get_all_routes_lists_mounts(self) -> None:
        """§13 r6: get_all_routes() lists mounts as (prefix, "MOUNT"), blueprint prefixes included."""
        app = App()

        @app.get("/x")
        def x(request: Any) -> str:
            return "x"

        app.mount("/legacy/", Where())
        bp = Blueprint("/api")
        bp.mount("/v1", Where())
        app.register_blueprint(bp)
        self.assertEqual(app.get_all_routes(), [("/x", "GET"), ("/legacy", "MOUNT"), ("/api/v1", "MOUNT")])

    def test_mount_after_first_request_is_live(self) -> None:
        """Registration is live: a mount added after serving started answers at once."""
        app = make_app()
        client = app.test_client()
        self.assertEqual(client.get("/late/x").status_code, 404)
        app.mount("/late", Where())
        self.assertEqual(client.get("/late/x").json()["postpath"], ["x"])


class MatchingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = make_app()
        app = self.app

        @app.get("/legacy/status")
        def status(request: Any) -> dict[str, str]:
            return {"from": "route"}

        @app.get("/users/{name}")
        def user(request: Any) -> dict[str, str]:
            return {"from": "param route"}

        app.mount("/legacy", Where("legacy"))
        app.mount("/legacy/deep", Where("deep"))
        app.mount("/users", Where("users"))
        app.mount("/tree", Tree())
        self.client = app.test_client()

    def test_prefix_and_below_go_to_the_mount(self) -> None:
        """§13 r1: the prefix itself and paths below it render through the resource."""
        self.assertEqual(self.client.get("/legacy").json()["postpath"], [])
        body = self.client.get("/legacy/a/b").json()
        self.assertEqual((body["name"], body["prepath"], body["postpath"]), ("legacy", ["legacy"], ["a", "b"]))

    def test_prefix_rule_does_not_match_a_longer_name(self) -> None:
        """SPEC §1 r6: /legacyx is not below /legacy: the app's JSON 404."""
        resp = self.client.get("/legacyx")
        self.assertEqual((resp.status_code, resp.json()["error"]), (404, "Not Found"))

    def test_longest_mount_wins(self) -> None:
        """§13 r2: of nested mounts, the longest prefix takes the path."""
        body = self.client.get("/legacy/deep/x").json()
        self.assertEqual((body["name"], body["prepath"], body["postpath"]), ("deep", ["legacy", "deep"], ["x"]))
        self.assertEqual(self.client.get("/legacy/deeper").json()["name"], "legacy")

    def test_routes_win_for_any_method(self) -> None:
        """§13 r2: a path a route matches is the routes' (405 + Allow, OPTIONS), even under a mount."""
        self.assertEqual(self.client.get("/legacy/status").json(), {"from": "route"})
        resp = self.client.post("/legacy/status")
        self.assertEqual((resp.status_code, resp.headers["Allow"]), (405, "GET, HEAD, OPTIONS"))
        resp = self.client.options("/legacy/status")
        self.assertEqual((resp.status_code, resp.headers["Allow"]), (204, "GET, HEAD, OPTIONS"))
        self.assertEqual(self.client.get("/users/bob").json(), {"from": "param route"})
        self.assertEqual(self.client.get("/users/bob/more").json()["name"], "users")

    def test_any_method_reaches_the_resource(self) -> None:
        """Methods are the resource's business below a mount: it sees PUT and the body from byte 0."""
        body = self.client.put("/legacy/x", data=b"payload").json()
        self.assertEqual((body["method"], body["body"]), ("PUT", "payload"))

    def test_twisted_traversal_below_the_mount(self) -> None:
        """§13 r1: a non-leaf resource is traversed with getChildForRequest, unknown children 404."""
        self.assertEqual(self.client.get("/tree").text, "tree root")
        body = self.client.get("/tree/child/x").json()
        self.assertEqual((body["prepath"], body["postpath"]), (["tree", "child"], ["x"]))
        self.assertEqual(self.client.get("/tree/nope").status_code, 404)

    def test_encoded_slash_is_not_a_prefix_boundary(self) -> None:
        """%2F stays inside one segment: /legacy%2Fx is not below /legacy."""
        self.assertEqual(self.client.get("/legacy%2Fx").status_code, 404)

    def test_doubled_and_trailing_slashes(self) -> None:
        """Empty segments before the prefix are skipped (as the router does); the rest is Twisted's."""
        body = self.client.get("//legacy//a/").json()
        self.assertEqual((body["prepath"], body["postpath"]), (["legacy"], ["", "a", ""]))

    def test_head_is_rendered_by_twisted_rules(self) -> None:
        """HEAD reaches the resource through Twisted's render: headers, no body."""
        resp = self.client.head("/legacy/x")
        self.assertEqual((resp.status_code, resp.content), (200, b""))

    def test_static_directories_take_part_in_longest_prefix(self) -> None:
        """enable_static_files below a mount keeps its paths (even missing files: JSON 404); equal prefix → the mount."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        with open(os.path.join(root, "s.txt"), "w") as f:
            f.write("static")
        app = make_app()
        app.mount("/site", Where("site"))
        app.enable_static_files(StaticFilesConfig("/site/static", root))
        app.enable_static_files(StaticFilesConfig("/same", root))
        app.mount("/same", Where("same"))
        client = app.test_client()
        self.assertEqual(client.get("/site/static/s.txt").text, "static")
        missing = client.get("/site/static/none.txt")
        self.assertEqual((missing.status_code, missing.json()["error"]), (404, "Not Found"))
        self.assertEqual(client.get("/site/other").json()["name"], "site")
        self.assertEqual(client.get("/same/s.txt").json()["name"], "same")

    def test_root_mount_takes_every_unmatched_path(self) -> None:
        """A mount at / is a catch-all behind the routes."""
        app = make_app()

        @app.get("/api")
        def api(request: Any) -> str:
            return "api"

        app.mount("/", Where("root"))
        client = app.test_client()
        self.assertEqual(client.get("/api").text, "api")
        self.assertEqual(client.get("/").json()["postpath"], [""])
        self.assertEqual(client.get("/other/x").json()["postpath"], ["other", "x"])


class NestedAppTests(SynchronousTestCase):
    def test_another_apps_resource(self) -> None:
        """§13 r1: another cello_twisted app's resource() mounted: its routes, root_path and JSON 404."""
        inner = make_app()

        @inner.get("/hello/{name}")
        def hello(request: Any) -> dict[str, str]:
            return {"hello": request.params["name"], "root_path": request.root_path, "path": request.path}

        inner.mount("/res", Where("inner"))
        outer = make_app()
        outer.enable_security_headers()
        outer.mount("/inner", inner.resource())
        client = outer.test_client()
        resp = client.get("/inner/hello/ann")
        self.assertEqual(resp.json(), {"hello": "ann", "root_path": "/inner", "path": "/hello/ann"})
        self.assertEqual(resp.headers["X-Frame-Options"], "DENY")
        body = client.get("/inner/res/x").json()
        self.assertEqual((body["name"], body["prepath"], body["postpath"]), ("inner", ["inner", "res"], ["x"]))
        missing = client.get("/inner/nope")
        self.assertEqual((missing.status_code, missing.json()["path"]), (404, "/nope"))

    def test_blueprint_rate_limit_applies_to_its_mount(self) -> None:
        """The nearest blueprint's limiter counts its mounts; the app's limiter does not count them."""
        app = make_app()
        app.enable_rate_limit(RateLimitConfig(requests=100, window=60))
        bp = Blueprint("/bp")
        bp.enable_rate_limit(RateLimitConfig(requests=1, window=60))
        bp.mount("/res", Where())
        app.register_blueprint(bp)
        client = app.test_client()
        first = client.get("/bp/res")
        self.assertEqual((first.status_code, first.headers["X-RateLimit-Limit"]), (200, "1"))
        self.assertEqual(client.get("/bp/res").status_code, 429)


class ChainTests(SynchronousTestCase):
    """§13 r3: the app's middleware runs before the resource and its headers reach the response."""

    def test_guards_refuse_before_the_resource(self) -> None:
        """App, blueprint and mount guards all run; a refusal never reaches the resource."""
        app = make_app()
        seen: list[str] = []

        def needs_key(request: Any) -> bool:
            seen.append("guard")
            return request.headers.get("x-key") == "ok"

        app.mount("/admin", Where(), guards=[needs_key])
        bp = Blueprint("/bp", guards=[lambda r: r.headers.get("x-bp") == "ok"])
        bp.mount("/res", Where("bp"))
        app.register_blueprint(bp)
        client = app.test_client()
        resp = client.get("/admin/x")
        self.assertEqual((resp.status_code, resp.json()["error"]), (403, "Forbidden"))
        self.assertEqual(client.get("/admin/x", headers={"X-Key": "ok"}).json()["postpath"], ["x"])
        self.assertEqual(client.get("/bp/res/y").status_code, 403)
        body = client.get("/bp/res/y", headers={"X-Bp": "ok"}).json()
        self.assertEqual((body["name"], body["prepath"]), ("bp", ["bp", "res"]))

    def test_blueprint_middleware_applies_to_its_mounts_only(self) -> None:
        """A blueprint's middleware wraps its own mounts, not the app's other mounts."""
        app = make_app()
        bp = Blueprint("/bp")

        @bp.middleware
        def tag(request: Any, call_next: Any) -> Any:
            return call_next().addCallback(lambda resp: resp.set_header("X-Bp", "yes"))

        bp.mount("/res", Where())
        app.register_blueprint(bp)
        app.mount("/other", Where())
        client = app.test_client()
        self.assertEqual(client.get("/bp/res").headers.get("X-Bp"), "yes")
        self.assertIsNone(client.get("/other").headers.get("X-Bp"))

    def test_middleware_headers_are_on_the_resource_response(self) -> None:
        """CORS, security headers, rate-limit headers and user headers reach the resource's response."""
        app = make_app()
        app.enable_cors(origins=["https://ui.example"])
        app.enable_security_headers()
        app.enable_rate_limit(RateLimitConfig(requests=2, window=60))

        @app.middleware
        def request_id(request: Any, call_next: Any) -> Any:
            return call_next().addCallback(lambda resp: resp.set_header("X-Request-Id", "r-1"))

        app.mount("/legacy", Where())
        client = app.test_client()
        resp = client.get("/legacy/x", headers={"Origin": "https://ui.example"})
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json()["postpath"], ["x"])
        self.assertEqual(resp.headers["Content-Type"], "application/json")  # the resource's own
        self.assertEqual(resp.headers["Access-Control-Allow-Origin"], "https://ui.example")
        self.assertEqual(resp.headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(resp.headers["X-RateLimit-Remaining"], "1")
        self.assertEqual(resp.headers["X-Request-Id"], "r-1")
        client.get("/legacy/x")
        refused = client.get("/legacy/x")
        self.assertEqual((refused.status_code, refused.json()["error"]), (429, "Too Many Requests"))

    def test_sessions_and_csrf_guard_mounts(self) -> None:
        """CSRF refuses an unsafe request to a mount without a token; the resource never runs."""
        from cello_twisted import CsrfConfig

        app = make_app()
        app.enable_csrf(CsrfConfig(secret=b"c" * 32))
        later = Later()
        app.mount("/legacy", later)
        resp = app.test_client().post("/legacy/x", data=b"a=1")
        self.assertEqual(resp.status_code, 403)
        self.assertEqual(later.pending, [])

    def test_async_chain_then_resource(self) -> None:
        """A chain that answers later (a Deferred middleware) still hands over with the body at 0."""
        app = make_app()

        @app.middleware
        async def reads_body(request: Any, call_next: Any) -> Any:
            request.body()
            return await call_next()

        app.mount("/legacy", Where())
        body = app.test_client().post("/legacy/x", data=b"posted").json()
        self.assertEqual(body["body"], "posted")


class ReturnedResourceTests(SynchronousTestCase):
    """§13 r4: a handler returning an IResource hands the request to it."""

    def setUp(self) -> None:
        self.app = make_app()
        app = self.app

        @app.get("/plain")
        def plain(request: Any) -> Resource:
            return Where("plain")

        @app.get("/files/{kind}/{*rest}")
        async def files(request: Any) -> Resource:
            return Where(request.params["kind"])

        @app.get("/later/{*rest}")
        def later(request: Any) -> Deferred[Resource]:
            return succeed(Tree())

        bp = Blueprint("/bp")

        @bp.get("/r/{id:int}")
        def in_bp(request: Any) -> Resource:
            return Where("bp")

        app.register_blueprint(bp)
        app.enable_security_headers()
        self.client = app.test_client()

    def test_without_wildcard_postpath_is_empty(self) -> None:
        """Without a wildcard: prepath = the route's segments, postpath = [] (trailing slash too)."""
        for path in ("/plain", "/plain/"):
            body = self.client.get(path).json()
            self.assertEqual((body["prepath"], body["postpath"]), (["plain"], []))

    def test_wildcard_is_the_postpath(self) -> None:
        """With {*rest}: prepath = the segments before it, postpath = the wildcard's (async handler)."""
        body = self.client.get("/files/img/a/b.png").json()
        self.assertEqual((body["name"], body["prepath"], body["postpath"]), ("img", ["files", "img"], ["a", "b.png"]))

    def test_threaded_handler(self) -> None:
        """A threaded=True handler may return a resource too."""

        @self.app.get("/threaded/{*rest}", threaded=True)
        def threaded(request: Any) -> Resource:
            return Where("threaded")

        body = self.client.get("/threaded/x").json()
        self.assertEqual((body["name"], body["prepath"], body["postpath"]), ("threaded", ["threaded"], ["x"]))

    def test_deferred_result_traverses(self) -> None:
        """A Deferred firing with a resource: Twisted traverses it from the wildcard on."""
        body = self.client.get("/later/child/z").json()
        self.assertEqual((body["prepath"], body["postpath"]), (["later", "child"], ["z"]))

    def test_blueprint_prefix_counts_as_consumed(self) -> None:
        """Blueprint prefixes are part of what the route consumed; the app's headers are on it."""
        resp = self.client.get("/bp/r/7")
        self.assertEqual(resp.json()["prepath"], ["bp", "r", "7"])
        self.assertEqual(resp.headers["X-Frame-Options"], "DENY")

    def test_route_shape(self) -> None:
        """What a route pattern consumes before its wildcard."""
        self.assertEqual(route_shape("/files/{kind}/{*rest}"), (2, True))
        self.assertEqual(route_shape("/plain"), (1, False))
        self.assertEqual(route_shape("/"), (0, False))
        self.assertEqual(route_shape("/{*all}"), (0, True))

    def test_split_at(self) -> None:
        """A prefix is matched on whole, non-empty segments."""
        self.assertEqual(split_at([b"a", b"b", b"c"], (b"a", b"b")), 2)
        self.assertEqual(split_at([b"", b"a", b"", b"b"], (b"a", b"b")), 4)
        self.assertIsNone(split_at([b"a"], (b"a", b"b")))
        self.assertIsNone(split_at([b"ab"], (b"a",)))
        self.assertEqual(split_at([b""], ()), 0)


class FailureTests(SynchronousTestCase):
    """§13 r5: failing resources give the app's JSON 500, never Twisted's HTML page."""

    def setUp(self) -> None:
        self.logged = _errors_logged(self)
        self.app = make_app()
        self.app.enable_security_headers()
        self.app.mount("/boom", Raising())
        self.client = self.app.test_client()

    def assert_json_500(self, resp: Any) -> None:
        self.assertEqual(resp.status_code, 500)
        self.assertEqual(resp.headers["Content-Type"], "application/json")
        self.assertEqual(resp.json(), {"error": "Internal Server Error", "status": 500})
        self.assertNotIn(b"<html", resp.content)
        self.assertNotIn(b"Traceback", resp.content)

    def test_raising_resource(self) -> None:
        """A resource raising in render → JSON 500 with the app's headers; the error is logged."""
        resp = self.client.get("/boom/x")
        self.assert_json_500(resp)
        self.assertEqual(resp.headers["X-Content-Type-Options"], "nosniff")
        self.assertTrue(any(e.get("log_failure") is not None for e in self.logged))
        self.flushLoggedErrors(ValueError)
        self.assertEqual(self.client.get("/nothing").status_code, 404)  # still serving

    def test_failure_reported_through_processing_failed(self) -> None:
        """A failing DeferredResource reports via request.processingFailed → JSON 500."""

        @self.app.get("/deferred")
        def deferred(request: Any) -> Resource:
            return DeferredResource(fail(KeyError("gone")))

        self.assert_json_500(self.client.get("/deferred"))
        self.flushLoggedErrors(KeyError)

    def test_headers_set_by_the_resource_are_dropped_on_failure(self) -> None:
        """Headers the resource set before failing do not leak into the 500; the chain's stay."""

        class HalfDone(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                request.setHeader(b"x-partial", b"1")
                request.setHeader(b"content-type", b"text/html")
                raise RuntimeError("half way")

        self.app.mount("/half", HalfDone())
        resp = self.client.get("/half")
        self.assert_json_500(resp)
        self.assertIsNone(resp.headers.get("X-Partial"))
        self.assertEqual(resp.headers["X-Frame-Options"], "DENY")
        self.flushLoggedErrors(RuntimeError)

    def test_debug_mode_details(self) -> None:
        """In debug mode the 500 carries the exception, as the app's other 500s do."""
        self.app.debug = True
        body = self.client.get("/boom").json()
        self.assertEqual((body["status"], body["exception"], body["detail"]), (500, "ValueError", "resource exploded"))
        self.flushLoggedErrors(ValueError)

    def test_guard_crash_is_a_json_error(self) -> None:
        """A guard raising in front of a mount fails closed (403), like any route's guard."""

        def crashes(request: Any) -> bool:
            raise ForbiddenError("nope")

        self.app.mount("/guarded", Where(), guards=[crashes])
        self.assertEqual(self.client.get("/guarded").status_code, 403)
