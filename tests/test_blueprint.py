"""Blueprints: prefixes, nesting, live registration, middleware and guard order (SPEC §2.4)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, HTTPError


def _tagger(log, name):
    def mw(request, call_next):
        log.append(f"{name}>")
        d = call_next(request)

        def after(response):
            log.append(f"<{name}")
            return response

        return d.addCallback(after)

    return mw


def _guard(log, name):
    def guard(request):
        log.append(f"guard:{name}")
        return True

    return guard


class BlueprintTests(SynchronousTestCase):
    def test_prefix_and_root_route(self) -> None:
        """§2.4 r1: Blueprint('/users') + '/' serves /users/ and /users; prefixes lose a trailing slash."""
        app = App()
        bp = Blueprint("/users/")
        bp.get("/")(lambda r: "root")
        bp.get("/{id}")(lambda r: r.params["id"])
        app.register_blueprint(bp)
        client = app.test_client()
        self.assertEqual(client.get("/users").text, "root")
        self.assertEqual(client.get("/users/").text, "root")
        self.assertEqual(client.get("/users/7").text, "7")
        self.assertEqual(bp.prefix, "/users")
        self.assertEqual(Blueprint("/").prefix, "")

    def test_nesting_and_live_registration(self) -> None:
        """§2.4 r1-r2: nested prefixes compose; routes added after registration still apply."""
        app = App()
        api = Blueprint("/api")
        v1 = Blueprint("/v1")
        api.register(v1)
        app.register_blueprint(api)
        v1.get("/late")(lambda r: "late")
        client = app.test_client()
        self.assertEqual(client.get("/api/v1/late").text, "late")
        self.assertEqual(app.get_all_routes(), [("/api/v1/late", "GET")])

    def test_order_middleware_then_guards(self) -> None:
        """§2.4 r3: app mw → outer/inner bp mw → app guards → outer/inner bp guards → route guards → handler."""
        log: list[str] = []
        app = App()
        outer = Blueprint("/o", guards=[_guard(log, "outer")])
        inner = Blueprint("/i", guards=[_guard(log, "inner")])
        outer.use(_tagger(log, "outer"))
        inner.use(_tagger(log, "inner"))

        @inner.get("/x", guards=[_guard(log, "route")])
        def handler(request):
            log.append("handler")
            return "ok"

        outer.register(inner)
        app.register_blueprint(outer)
        # app middleware and guards added AFTER register_blueprint still come first
        app.use(_tagger(log, "app"))
        app.add_guard(_guard(log, "app"))
        self.assertEqual(app.test_client().get("/o/i/x").text, "ok")
        self.assertEqual(
            log,
            ["app>", "outer>", "inner>", "guard:app", "guard:outer", "guard:inner", "guard:route", "handler", "<inner", "<outer", "<app"],
        )

    def test_blueprint_middleware_scope(self) -> None:
        """§2.4 r4: blueprint middleware runs for its paths (any method, incl. 405/OPTIONS), never for others or 404s."""
        log: list[str] = []
        app = App()
        bp = Blueprint("/b")
        bp.use(_tagger(log, "bp"))
        bp.get("/x")(lambda r: "x")
        app.register_blueprint(bp)
        app.get("/other")(lambda r: "other")
        client = app.test_client()
        client.get("/other")
        client.get("/b/missing")
        self.assertEqual(log, [])
        self.assertEqual(client.delete("/b/x").status_code, 405)
        self.assertEqual(client.options("/b/x").status_code, 204)
        self.assertEqual(log, ["bp>", "<bp", "bp>", "<bp"])

    def test_exception_handlers_innermost_first(self) -> None:
        """§2.4 r4: blueprint exception handlers (innermost first) precede the app's."""
        app = App()
        outer = Blueprint("/o")
        inner = Blueprint("/i")

        @app.exception_handler(KeyError)
        def app_handler(request, exc):
            return ("app", 500)

        @outer.exception_handler(KeyError)
        def outer_handler(request, exc):
            return ("outer", 409)

        @inner.exception_handler(LookupError)
        def inner_handler(request, exc):
            return ("inner", 410)

        def boom(request):
            raise KeyError("k")

        inner.get("/x")(boom)
        outer.get("/y")(boom)
        app.get("/z")(boom)
        outer.register(inner)
        app.register_blueprint(outer)
        client = app.test_client()
        # by MRO: KeyError is more specific than LookupError, so outer's KeyError handler wins
        self.assertEqual((client.get("/o/i/x").status_code, client.get("/o/i/x").text), (409, "outer"))
        self.assertEqual(client.get("/o/y").text, "outer")
        self.assertEqual(client.get("/z").text, "app")

    def test_bp_get_all_routes(self) -> None:
        """§2.4 r5: bp.get_all_routes() applies its own prefix, not its parents'; nested included."""
        api = Blueprint("/api")
        v1 = Blueprint("/v1")
        v1.get("/a")(lambda r: None)
        api.register(v1)
        api.post("/b")(lambda r: None)
        App().register_blueprint(api)
        self.assertEqual(v1.get_all_routes(), [("/v1/a", "GET")])
        self.assertEqual(api.get_all_routes(), [("/api/b", "POST"), ("/api/v1/a", "GET")])

    def test_errors(self) -> None:
        """§2.4 errors: prefix without '/'; same blueprint twice; into itself or a descendant."""
        with self.assertRaises(ValueError):
            Blueprint("api")
        app = App()
        bp = Blueprint("/a")
        child = Blueprint("/c")
        bp.register(child)
        app.register_blueprint(bp)
        with self.assertRaises(ValueError):
            app.register_blueprint(bp)
        with self.assertRaises(ValueError):
            app.register_blueprint(child)
        with self.assertRaises(ValueError):
            bp.register(bp)
        with self.assertRaises(ValueError):
            child.register(bp)

    def test_http_error_from_blueprint_route(self) -> None:
        """§2.24 r1 in a blueprint: HTTPError keeps its status and headers."""
        app = App()
        bp = Blueprint("/b")

        @bp.get("/x")
        def x(request):
            raise HTTPError(409, "conflict", headers={"X-Why": "dup"})

        app.register_blueprint(bp)
        response = app.test_client().get("/b/x")
        self.assertEqual((response.status_code, response.headers.get("x-why")), (409, "dup"))
        self.assertEqual(response.json(), {"error": "Conflict", "status": 409, "detail": "conflict"})
