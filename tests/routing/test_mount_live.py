"""Mounted and returned twisted.web resources over real sockets (SPEC_OPERATIONS §13, issue 17).

static.File, a Flask app through WSGIResource, ReverseProxyResource to an upstream
started here, a Klein app, a route returning File(root), and failing resources.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any

import flask
import pytest
import treq
from klein import Klein
from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from twisted.web.proxy import ReverseProxyResource
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.static import File
from twisted.web.wsgi import WSGIResource

from cello_twisted import App, JwtConfig, RateLimitConfig
from tests._support.live import wait_until

pytestmark = pytest.mark.live  # opens real sockets

TIMEOUT = 5
SECRET = b"m" * 32


class RawClient(protocol.Protocol):
    """Sends one raw request and collects every byte until the server closes."""

    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(self.received)


class LiveCase(TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.pool = HTTPConnectionPool(reactor, persistent=False)

    def listen(self, site: Site) -> int:
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    def serve(self, app: App) -> str:
        return f"http://127.0.0.1:{self.listen(app.site())}"

    def request(self, method: str, url: str, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = treq.request(method, url, pool=self.pool, **kwargs)
        return d.addTimeout(TIMEOUT, reactor)

    @inlineCallbacks
    def fetch(self, method: str, url: str, **kwargs: Any) -> Any:
        """(response, body bytes)."""
        response = yield self.request(method, url, **kwargs)
        body = yield response.content()
        return response, body

    @inlineCallbacks
    def raw(self, port: int, data: bytes) -> Any:
        client = yield protocol.ClientCreator(reactor, RawClient).connectTCP("127.0.0.1", port)
        client.transport.write(data)
        received = yield client.closed.addTimeout(TIMEOUT, reactor)
        return received


def header(response: Any, name: str) -> str | None:
    values = response.headers.getRawHeaders(name.encode("latin-1"))
    return values[0].decode("latin-1") if values else None


def make_tree(case: TestCase) -> tuple[str, str]:
    """(public root, a secret file beside it): root/a.txt (26 bytes), root/sub/b.txt, ../secret.txt."""
    base = tempfile.mkdtemp(prefix="cello-mount-")
    case.addCleanup(shutil.rmtree, base, True)
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("abcdefghijklmnopqrstuvwxyz")
    with open(os.path.join(root, "sub", "b.txt"), "w") as f:
        f.write("inner file")
    with open(os.path.join(base, "secret.txt"), "w") as f:
        f.write("TOP SECRET")
    return root, base


class StaticFileTests(LiveCase):
    """Acceptance 1: static.File mounted behind JWT."""

    def setUp(self) -> None:
        super().setUp()
        self.root, _ = make_tree(self)
        self.app = App()
        self.app.enable_jwt(JwtConfig(secret=SECRET), required=True)
        self.app.mount("/files", File(self.root))
        self.base = self.serve(self.app)
        self.plain = f"http://127.0.0.1:{self.listen(Site(File(self.root)))}"
        self.auth = {"Authorization": f"Bearer {self.app.jwt.create_token({'sub': 'ann'})}"}

    @inlineCallbacks
    def test_jwt_refuses_without_a_token(self) -> Any:
        """The app's JWT runs first: no token → the app's JSON 401, the file is not sent."""
        response, body = yield self.fetch("GET", self.base + "/files/a.txt")
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(body)["error"], "Unauthorized")
        self.assertNotIn(b"abcdef", body)

    @inlineCallbacks
    def test_served_as_twisted_serves_it(self) -> Any:
        """With a token: body, Range (206 + Content-Range) and If-Modified-Since (304) as a plain Site gives them."""
        cases: list[dict[str, str]] = [{}, {"Range": "bytes=2-5"}, {"Range": "bytes=-3"}]
        for extra in cases:
            ours, our_body = yield self.fetch("GET", self.base + "/files/a.txt", headers={**self.auth, **extra})
            theirs, their_body = yield self.fetch("GET", self.plain + "/a.txt", headers=extra)
            self.assertEqual((ours.code, our_body), (theirs.code, their_body))
            for name in ("Content-Range", "Content-Type", "Last-Modified", "Accept-Ranges", "ETag", "Content-Length"):
                self.assertEqual(header(ours, name), header(theirs, name), name)
        self.assertEqual(our_body, b"xyz")
        modified = header(ours, "Last-Modified")
        assert modified is not None
        ours, _ = yield self.fetch("GET", self.base + "/files/a.txt", headers={**self.auth, "If-Modified-Since": modified})
        theirs, _ = yield self.fetch("GET", self.plain + "/a.txt", headers={"If-Modified-Since": modified})
        self.assertEqual((ours.code, theirs.code), (304, 304))

    @inlineCallbacks
    def test_subdirectories_and_missing_files(self) -> Any:
        """Twisted traverses below the mount: sub/b.txt served, a missing file 404s."""
        response, body = yield self.fetch("GET", self.base + "/files/sub/b.txt", headers=self.auth)
        self.assertEqual((response.code, body), (200, b"inner file"))
        response, _ = yield self.fetch("GET", self.base + "/files/nope.txt", headers=self.auth)
        self.assertEqual(response.code, 404)

    @inlineCallbacks
    def test_traversal_attempts_404(self) -> Any:
        """Raw ../ , %2e%2e and ..%2f paths never leave the root: 404 and no secret bytes."""
        port = int(self.base.rsplit(":", 1)[1])
        token = self.auth["Authorization"].encode()
        for path in (b"/files/../secret.txt", b"/files/%2e%2e/secret.txt", b"/files/..%2fsecret.txt", b"/files/sub/../../secret.txt"):
            received = yield self.raw(
                port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + b"\r\nConnection: close\r\n\r\n"
            )
            self.assertTrue(received.startswith(b"HTTP/1.1 404"), (path, received[:40]))
            self.assertNotIn(b"TOP SECRET", received)


def legacy_flask() -> flask.Flask:
    flask_app = flask.Flask("legacy")
    flask_request = flask.request  # (a module-level proxy would trip trial's test discovery)
    jsonify = flask.jsonify

    @flask_app.route("/hello")
    def hello() -> Any:
        return jsonify(script_name=flask_request.environ["SCRIPT_NAME"], path_info=flask_request.environ["PATH_INFO"])

    @flask_app.route("/echo", methods=["POST"])
    def echo() -> Any:
        return jsonify(body=flask_request.get_data(as_text=True), query=flask_request.args.get("q"))

    return flask_app


class FlaskTests(LiveCase):
    """Acceptance 2: a Flask app through WSGIResource, behind the app's rate limit and security headers."""

    def setUp(self) -> None:
        super().setUp()
        self.threads = ThreadPool(1, 2, name="flask")
        self.threads.start()
        self.addCleanup(self.threads.stop)
        self.app = App()
        self.app.enable_rate_limit(RateLimitConfig(requests=3, window=60))
        self.app.enable_security_headers()
        self.app.mount("/legacy", WSGIResource(reactor, self.threads, legacy_flask()))

        @self.app.get("/native")
        def native(request: Any) -> dict[str, bool]:
            return {"native": True}

    @inlineCallbacks
    def test_routes_answer_with_script_name_and_path_info(self) -> Any:
        """Flask's routes answer; SCRIPT_NAME is the mount prefix and PATH_INFO the rest; security headers on it."""
        base = self.serve(self.app)
        response, body = yield self.fetch("GET", base + "/legacy/hello")
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"script_name": "/legacy", "path_info": "/hello"})
        self.assertEqual(header(response, "X-Content-Type-Options"), "nosniff")
        self.assertEqual(header(response, "X-Frame-Options"), "DENY")
        self.assertEqual(header(response, "X-RateLimit-Limit"), "3")
        response, body = yield self.fetch("POST", base + "/legacy/echo?q=1", data=b"sent body")
        self.assertEqual(json.loads(body), {"body": "sent body", "query": "1"})
        response, _ = yield self.fetch("GET", base + "/legacy/missing")
        self.assertEqual(response.code, 404)  # Flask's own 404 below the mount

    @inlineCallbacks
    def test_rate_limit_refuses_before_flask(self) -> Any:
        """The app's rate limit counts mount requests and answers 429 itself."""
        base = self.serve(self.app)
        for _ in range(3):
            response, _ = yield self.fetch("GET", base + "/legacy/hello")
            self.assertEqual(response.code, 200)
        response, body = yield self.fetch("GET", base + "/legacy/hello")
        self.assertEqual(response.code, 429)
        self.assertEqual(json.loads(body)["error"], "Too Many Requests")
        self.assertIsNotNone(header(response, "Retry-After"))

    @inlineCallbacks
    def test_embedding_prefix_is_in_script_name(self) -> Any:
        """Embedded under /outer in a plain Site: SCRIPT_NAME = embedding prefix + mount prefix."""
        root = Resource()
        root.putChild(b"outer", self.app.resource())
        base = f"http://127.0.0.1:{self.listen(Site(root))}"
        response, body = yield self.fetch("GET", base + "/outer/legacy/hello")
        self.assertEqual(json.loads(body), {"script_name": "/outer/legacy", "path_info": "/hello"})
        response, body = yield self.fetch("GET", base + "/outer/native")
        self.assertEqual(json.loads(body), {"native": True})


class Upstream(Resource):
    """The proxied service: echoes what it received."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"x-upstream", b"yes")
        return json.dumps(
            {
                "uri": request.uri.decode(),
                "method": request.method.decode(),
                "host": request.getHeader(b"host").decode(),
                "body": request.content.read().decode(),
            }
        ).encode()


class ReverseProxyTests(LiveCase):
    """Acceptance 3: ReverseProxyResource to a local upstream started by the test."""

    @inlineCallbacks
    def test_proxies_below_the_prefix(self) -> Any:
        """/api/v1/... is forwarded with the rest of the path, query and body; app headers added."""
        upstream = self.listen(Site(Upstream()))
        app = App()
        app.enable_security_headers()
        app.mount("/api/v1", ReverseProxyResource("127.0.0.1", upstream, b"/service"))
        base = self.serve(app)
        response, body = yield self.fetch("GET", base + "/api/v1/items/7?full=1")
        self.assertEqual(response.code, 200)
        seen = json.loads(body)
        self.assertEqual((seen["uri"], seen["method"], seen["host"]), ("/service/items/7?full=1", "GET", f"127.0.0.1:{upstream}"))
        self.assertEqual(header(response, "X-Upstream"), "yes")
        self.assertEqual(header(response, "X-Frame-Options"), "DENY")
        response, body = yield self.fetch("POST", base + "/api/v1/items", data=b'{"n": 1}')
        self.assertEqual(json.loads(body)["body"], '{"n": 1}')


class KleinAndReturnedFileTests(LiveCase):
    """Acceptance 4: a Klein app's resource mounted; a route returning File(root) for /files/{*rest}."""

    def setUp(self) -> None:
        super().setUp()
        self.root, _ = make_tree(self)
        klein = Klein()

        @klein.route("/hello/<name>")
        def hello(request: Any, name: str) -> str:
            return f"hi {name} at {request.prepath!r}"

        self.app = App()
        self.app.mount("/klein", klein.resource())
        root = self.root

        @self.app.get("/files/{*rest}")
        def files(request: Any) -> File:
            return File(root)

        @self.app.get("/owned/{user}/{*rest}")
        async def owned(request: Any) -> Any:
            if request.params["user"] != "ann":
                return {"error": "not yours"}, 403
            return File(root)

        self.base = self.serve(self.app)

    @inlineCallbacks
    def test_klein_app(self) -> Any:
        """Klein routes answer below the mount, seeing the mount prefix consumed."""
        response, body = yield self.fetch("GET", self.base + "/klein/hello/bob")
        self.assertEqual(response.code, 200)
        self.assertTrue(body.startswith(b"hi bob at [b'klein'"), body)

    @inlineCallbacks
    def test_route_returning_file(self) -> Any:
        """/files/{*rest} → root/rest, with Range; an async handler may decide per request."""
        response, body = yield self.fetch("GET", self.base + "/files/sub/b.txt")
        self.assertEqual((response.code, body), (200, b"inner file"))
        response, body = yield self.fetch("GET", self.base + "/files/a.txt", headers={"Range": "bytes=0-2"})
        self.assertEqual((response.code, body, header(response, "Content-Range")), (206, b"abc", "bytes 0-2/26"))
        response, body = yield self.fetch("GET", self.base + "/owned/ann/a.txt")
        self.assertEqual(body, b"abcdefghijklmnopqrstuvwxyz")
        response, _ = yield self.fetch("GET", self.base + "/owned/bob/a.txt")
        self.assertEqual(response.code, 403)

    @inlineCallbacks
    def test_returned_file_traversal_404(self) -> Any:
        """A wildcard holding .. reaches File as a .. child: 404, nothing outside root."""
        port = int(self.base.rsplit(":", 1)[1])
        received = yield self.raw(port, b"GET /files/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(received.startswith(b"HTTP/1.1 404"), received[:40])
        self.assertNotIn(b"TOP SECRET", received)


class Explodes(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        raise ZeroDivisionError("resource bug")


class Slow(Resource):
    """Answers only when told; records how its request ended (as under a plain Site)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []
        self.ended: list[str] = []

    def render(self, request: Any) -> Any:
        self.requests.append(request)
        request.notifyFinish().addCallbacks(lambda _: self.ended.append("finished"), lambda f: self.ended.append(f.type.__name__))
        return NOT_DONE_YET


class FailureTests(LiveCase):
    """Acceptance 5: failing resources → JSON 500, the server keeps serving; disconnects as under a Site."""

    def setUp(self) -> None:
        super().setUp()
        self.app = App()
        self.app.mount("/boom", Explodes())
        self.slow = Slow()
        self.app.mount("/slow", self.slow)

        @self.app.get("/ok")
        def ok(request: Any) -> str:
            return "ok"

        self.port = self.listen(self.app.site())
        self.base = f"http://127.0.0.1:{self.port}"

    @inlineCallbacks
    def test_raising_resource_is_a_json_500(self) -> Any:
        """No Twisted HTML traceback page: the app's JSON 500, then the next requests are served."""
        for _ in range(2):
            response, body = yield self.fetch("GET", self.base + "/boom/x")
            self.assertEqual(response.code, 500)
            self.assertEqual(json.loads(body), {"error": "Internal Server Error", "status": 500})
            self.assertNotIn(b"<html", body)
        response, body = yield self.fetch("GET", self.base + "/ok")
        self.assertEqual((response.code, body), (200, b"ok"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)

    @inlineCallbacks
    def test_failure_after_the_response_started_cuts_the_connection(self) -> Any:
        """processingFailed after bytes went out: the connection closes, no error page appended."""
        client = yield protocol.ClientCreator(reactor, RawClient).connectTCP("127.0.0.1", self.port)
        client.transport.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: bool(self.slow.requests), TIMEOUT, "resource reached")
        twreq = self.slow.requests[0]
        twreq.write(b"partial body")
        from twisted.python.failure import Failure

        twreq.processingFailed(Failure(OSError("disk gone")))
        received = yield client.closed.addTimeout(TIMEOUT, reactor)
        self.assertTrue(received.startswith(b"HTTP/1.1 200"))
        self.assertIn(b"partial body", received)
        self.assertNotIn(b"Processing Failed", received)
        self.assertNotIn(b"Internal Server Error", received)
        self.flushLoggedErrors(OSError)

    @inlineCallbacks
    def test_client_disconnect_reaches_the_resource(self) -> Any:
        """A client leaving mid-request errbacks the resource's notifyFinish, as a plain Site does."""
        client = yield protocol.ClientCreator(reactor, RawClient).connectTCP("127.0.0.1", self.port)
        client.transport.write(b"GET /slow/x HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: bool(self.slow.requests), TIMEOUT, "resource reached")
        client.transport.loseConnection()
        yield wait_until(lambda: bool(self.slow.ended), TIMEOUT, "disconnect noticed")
        self.assertEqual(self.slow.ended, ["ConnectionDone"])
        response, body = yield self.fetch("GET", self.base + "/ok")
        self.assertEqual(body, b"ok")


EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mounts.py")


class ExampleTests(LiveCase):
    """examples/mounts.py, loaded as twistd loads it, over a real socket."""

    def setUp(self) -> None:
        super().setUp()
        from cello_twisted.server._loader import load_app

        upstream = self.listen(Site(Upstream()))
        old = os.environ.get("UPSTREAM")
        os.environ["UPSTREAM"] = f"127.0.0.1:{upstream}"
        self.addCleanup(lambda: os.environ.pop("UPSTREAM") if old is None else os.environ.update(UPSTREAM=old))
        self.addCleanup(sys.modules.pop, "mounts", None)
        self.base = self.serve(load_app(EXAMPLE))

    @inlineCallbacks
    def test_example_mounts(self) -> Any:
        """The documented example: files behind JWT, Flask under /legacy, the proxy, a returned File."""
        response, body = yield self.fetch("GET", self.base + "/reports/report.txt")
        self.assertEqual(response.code, 401)
        response, body = yield self.fetch("POST", self.base + "/login")
        token = json.loads(body)["access_token"]
        response, body = yield self.fetch("GET", self.base + "/reports/report.txt", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual((response.code, body), (200, b"Quarterly report: all good.\n"))
        self.assertEqual(header(response, "X-Frame-Options"), "DENY")
        response, body = yield self.fetch("GET", self.base + "/legacy/hello")
        self.assertEqual(json.loads(body), {"from": "flask"})
        self.assertIsNotNone(header(response, "X-RateLimit-Remaining"))
        response, body = yield self.fetch("GET", self.base + "/api/v1/users?x=1")
        self.assertEqual(json.loads(body)["uri"], "/users?x=1")
        response, body = yield self.fetch("GET", self.base + "/downloads/report.txt")
        self.assertEqual(body, b"Quarterly report: all good.\n")
        response, body = yield self.fetch("GET", self.base + "/")
        self.assertIn(["/reports", "MOUNT"], json.loads(body)["routes"])
