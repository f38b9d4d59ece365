"""The middleware chain (SPEC §2.6)."""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, HTTPError, Response


class ChainTests(SynchronousTestCase):
    def test_registration_order(self) -> None:
        """§2.6 r1: the first registered sees the request first and the response last."""
        app = App()
        log: list[str] = []

        def make(name):
            def mw(request, call_next):
                log.append(f"in:{name}")
                return call_next(request).addCallback(lambda r: (log.append(f"out:{name}"), r)[1])

            return mw

        app.use(make("a"))

        @app.middleware
        async def b(request, call_next):
            log.append("in:b")
            response = await call_next(request)
            log.append("out:b")
            return response

        app.use(make("c"))
        app.get("/")(lambda r: (log.append("handler"), "ok")[1])
        self.assertEqual(app.test_client().get("/").text, "ok")
        self.assertEqual(log, ["in:a", "in:b", "in:c", "handler", "out:c", "out:b", "out:a"])

    def test_route_resolved_before_chain(self) -> None:
        """§2.6 r2: request.route and params are available in middleware; 404/405 pass through it."""
        app = App()
        seen: list = []

        def mw(request, call_next):
            seen.append((request.route.path if request.route else None, dict(request.params)))
            return call_next(request).addCallback(lambda r: r.set_header("X-Seen", str(r.status)) or r)

        app.use(mw)
        app.get("/u/{id}")(lambda r: "u")
        client = app.test_client()
        client.get("/u/3")
        missing = client.get("/missing")
        wrong = client.post("/u/3")
        self.assertEqual(seen[0], ("/u/{id}", {"id": "3"}))
        self.assertEqual(seen[1], (None, {}))
        self.assertEqual((missing.headers.get("x-seen"), wrong.headers.get("x-seen")), ("404", "405"))

    def test_short_circuit_and_conversion(self) -> None:
        """§2.6 r3: returning without call_next short-circuits; the value is converted like a handler's."""
        app = App()
        called: list = []
        app.use(lambda request, call_next: {"blocked": True} if request.path == "/x" else call_next(request))
        app.get("/x")(lambda r: called.append(1))
        response = app.test_client().get("/x")
        self.assertEqual((response.status_code, response.json(), called), (200, {"blocked": True}, []))

    def test_call_next_twice_is_runtime_error(self) -> None:
        """§2.6 r3: calling call_next twice → RuntimeError (→ 500)."""
        app = App()

        def twice(request, call_next):
            call_next(request)
            return call_next(request)

        app.use(twice)
        app.get("/")(lambda r: "ok")
        self.assertEqual(app.test_client().get("/").status_code, 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_call_next_always_yields_response(self) -> None:
        """§2.6 r3: call_next always yields a Response, even for a raising handler."""
        app = App()
        got: list = []

        def mw(request, call_next):
            return call_next(request).addCallback(lambda r: (got.append(type(r).__name__ + str(r.status)), r)[1])

        app.use(mw)

        @app.get("/")
        def boom(request):
            raise HTTPError(418)

        self.assertEqual(app.test_client().get("/").status_code, 418)
        self.assertEqual(got, ["Response418"])

    def test_before_and_after_request(self) -> None:
        """§2.6 r3: before_request non-None short-circuits; after_request None keeps the response."""
        app = App()

        @app.before_request
        def gate(request):
            if request.headers.get("x-block"):
                return Response.json({"blocked": True}, status=403)
            return None

        @app.after_request
        def stamp(request, response):
            response.set_header("X-After", "1")

        @app.after_request
        async def replace(request, response):
            if request.path == "/replace":
                return "replaced"
            return None

        app.get("/")(lambda r: "ok")
        app.get("/replace")(lambda r: "orig")
        client = app.test_client()
        ok = client.get("/")
        self.assertEqual((ok.text, ok.headers.get("x-after")), ("ok", "1"))
        blocked = client.get("/", headers={"X-Block": "1"})
        self.assertEqual((blocked.status_code, blocked.headers.get("x-after")), (403, None))
        self.assertEqual(client.get("/replace").text, "replaced")

    def test_middleware_exception_becomes_response_for_outer(self) -> None:
        """§2.6 r4: exceptions in middleware are handled; outer middleware receives the error Response."""
        app = App()
        statuses: list[int] = []
        app.use(lambda request, call_next: call_next(request).addCallback(lambda r: (statuses.append(r.status), r)[1]))

        def broken(request, call_next):
            raise HTTPError(401, "no")

        app.use(broken)
        app.get("/")(lambda r: "ok")
        response = app.test_client().get("/")
        self.assertEqual((response.status_code, statuses), (401, [401]))
        self.assertIn("www-authenticate", response.headers)

    def test_deferred_returning_middleware(self) -> None:
        """§2.6: middleware may return a Deferred or a plain Response."""
        app = App()
        app.use(lambda request, call_next: succeed(Response.text("from-mw")) if request.path == "/d" else call_next(request))
        app.get("/d")(lambda r: "handler")
        self.assertEqual(app.test_client().get("/d").text, "from-mw")

    def test_enable_returns_and_replaces(self) -> None:
        """§2.6 r5: enable_* return the middleware; calling again replaces it in place."""
        app = App()
        first = app.enable_logging()
        app.use(lambda r, n: n(r))
        second = app.enable_logging(exclude_paths=())
        self.assertIsNot(first, second)
        self.assertIs(app.middleware[0], second)
        self.assertEqual(len(app.middleware), 2)


class _Watching:
    """A native middleware with its own link that records what its call_next gave it."""

    native = True

    def __init__(self, guards_call_next: bool) -> None:
        self.guards_call_next = guards_call_next
        self.seen: list[str] = []

    def link(self, call_next, on_error, context, route=None):
        def watching(request):
            try:
                result = call_next(request)
            except Exception as exc:  # noqa: BLE001 - what the contract promises to handle
                self.seen.append(type(exc).__name__)
                return on_error(request, exc)
            self.seen.append(f"response {result.status}")
            return result

        return watching

    def __call__(self, request, call_next):  # composed by hand only
        return call_next(request)


class GuardsCallNextTests(SynchronousTestCase):
    def _app(self, outer: _Watching, inner_mw: object | None = None) -> App:
        app = App()
        app.use(outer)
        if inner_mw is not None:
            app.use(inner_mw)

        @app.get("/")
        def boom(request):
            raise HTTPError(418)

        return app

    def test_innermost_layer_that_guards_is_handed_the_endpoint(self) -> None:
        """A layer declaring guards_call_next, innermost, sees the handler's exception itself
        (one frame fewer); the response the client gets is the same 418."""
        layer = _Watching(guards_call_next=True)
        self.assertEqual(self._app(layer).test_client().get("/").status_code, 418)
        self.assertEqual(layer.seen, ["HTTPError"])

    def test_other_layers_get_a_guarded_call_next(self) -> None:
        """Without the declaration, or with a layer inside it, call_next yields the 418 response."""
        plain = _Watching(guards_call_next=False)
        self.assertEqual(self._app(plain).test_client().get("/").status_code, 418)
        self.assertEqual(plain.seen, ["response 418"])
        outer = _Watching(guards_call_next=True)
        inner = _Watching(guards_call_next=True)
        self.assertEqual(self._app(outer, inner).test_client().get("/").status_code, 418)
        self.assertEqual((outer.seen, inner.seen), (["response 418"], ["HTTPError"]))
