"""Routing: paths, parameters, constraints, priority, HEAD/OPTIONS/405/404 (SPEC §2.1)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint
from cello_twisted.routing import AlphaConstraint, IntConstraint, RegexConstraint, UuidConstraint

from ._helpers import make_app


def _echo_params(request):
    return {"route": request.route.path, "params": dict(request.params)}


class DecoratorTests(SynchronousTestCase):
    def test_decorator_returns_function_unchanged(self) -> None:
        """§2.1 r1: decorators register and return the function unchanged."""
        app = App()

        def handler(request):
            return "x"

        for decorator in (app.get, app.post, app.put, app.patch, app.delete, app.options, app.head):
            self.assertIs(decorator(f"/{decorator.__name__}")(handler), handler)
        self.assertIs(app.route("/r", methods=["GET", "POST"])(handler), handler)
        self.assertEqual(app.test_client().post("/r").text, "x")


class ParamTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = make_app()
        for path in (
            "/users/me",
            "/users/{id:int}",
            "/users/{name}",
            "/users/{name}/posts",
            "/files/{*rest}",
            "/items/{item_id:uuid}",
            "/tags/{tag:alpha}",
            "/codes/{code:alnum}",
            "/static/{path:path}",
            "/any/{rest:*}",
        ):
            self.app.get(path)(_echo_params)
        self.client = self.app.test_client()

    def get(self, path: str) -> dict:
        response = self.client.get(path)
        self.assertEqual(response.status_code, 200, path)
        return response.json()

    def test_params_are_decoded_strings(self) -> None:
        """§2.1 r2: params are str, percent-decoded UTF-8; %2F stays inside the parameter."""
        self.assertEqual(self.get("/users/caf%C3%A9")["params"], {"name": "café"})
        self.assertEqual(self.get("/users/a%2Fb")["params"], {"name": "a/b"})
        self.assertEqual(self.get("/users/42")["params"], {"id": "42"})

    def test_priority_literal_constrained_plain_wildcard(self) -> None:
        """§2.1 r3: literal > constrained > plain param > wildcard."""
        self.assertEqual(self.get("/users/me")["route"], "/users/me")
        self.assertEqual(self.get("/users/42")["route"], "/users/{id:int}")
        self.assertEqual(self.get("/users/bob")["route"], "/users/{name}")

    def test_backtracking_after_literal(self) -> None:
        """§2.1 r3: a literal that leads nowhere falls back to the parameter branch."""
        self.assertEqual(self.get("/users/me/posts"), {"route": "/users/{name}/posts", "params": {"name": "me"}})

    def test_backtracking_from_a_matching_constraint_and_a_dead_end_literal(self) -> None:
        """§2.1 r3: the first branch that accepts a segment may still lead nowhere; the next one is tried."""
        app = make_app()
        for path in ("/x/{a:int}/foo", "/x/{b}/bar", "/p/q/r", "/p/{x}"):
            app.get(path)(_echo_params)
        client = app.test_client()
        self.assertEqual(client.get("/x/5/foo").json(), {"route": "/x/{a:int}/foo", "params": {"a": "5"}})
        self.assertEqual(client.get("/x/5/bar").json(), {"route": "/x/{b}/bar", "params": {"b": "5"}})
        self.assertEqual(client.get("/p/q").json(), {"route": "/p/{x}", "params": {"x": "q"}})
        self.assertEqual(client.get("/p/q/r").json(), {"route": "/p/q/r", "params": {}})
        self.assertEqual(client.get("/p/q/s").status_code, 404)

    def test_failing_constraint_does_not_match(self) -> None:
        """§2.1 r3: a failing constraint just doesn't match (404, not an error)."""
        self.assertEqual(self.client.get("/tags/abc1").status_code, 404)
        self.assertEqual(self.client.get("/codes/ab-1").status_code, 404)
        self.assertEqual(self.get("/codes/ab1")["params"], {"code": "ab1"})
        self.assertEqual(self.get("/tags/abc")["params"], {"tag": "abc"})

    def test_uuid_any_case(self) -> None:
        """§2.1 r3: uuid is canonical 8-4-4-4-12 hex, any case."""
        value = "123E4567-e89b-12d3-A456-426614174000"
        self.assertEqual(self.get(f"/items/{value}")["params"], {"item_id": value})
        self.assertEqual(self.client.get("/items/123e4567e89b12d3a456426614174000").status_code, 404)

    def test_wildcards_capture_rest(self) -> None:
        """§2.1 r3: {*name}, {name:*} and {name:path} capture the rest (>= 1 character)."""
        self.assertEqual(self.get("/files/a/b/c.txt")["params"], {"rest": "a/b/c.txt"})
        self.assertEqual(self.get("/static/x/y")["params"], {"path": "x/y"})
        self.assertEqual(self.get("/any/z")["params"], {"rest": "z"})
        self.assertEqual(self.client.get("/files/").status_code, 404)
        self.assertEqual(self.client.get("/files").status_code, 404)

    def test_trailing_slash_ignored(self) -> None:
        """§2.1 r4: /users/me and /users/me/ hit the same route."""
        self.assertEqual(self.get("/users/me/")["route"], "/users/me")
        self.assertEqual(self.get("/users/7/")["route"], "/users/{id:int}")


class ConstraintObjectTests(SynchronousTestCase):
    def test_constraint_objects(self) -> None:
        """§2.1: constraints={} with Int/Uuid/Alpha/Regex (full match) constraints."""
        app = App()
        app.get("/a/{x}", constraints={"x": IntConstraint()})(_echo_params)
        app.get("/b/{x}", constraints={"x": RegexConstraint(r"[a-c]+")})(_echo_params)
        app.get("/c/{x}", constraints={"x": UuidConstraint()})(_echo_params)
        app.get("/d/{x}", constraints={"x": AlphaConstraint()})(_echo_params)
        client = app.test_client()
        self.assertEqual(client.get("/a/12").status_code, 200)
        self.assertEqual(client.get("/a/1x").status_code, 404)
        self.assertEqual(client.get("/b/abc").status_code, 200)
        self.assertEqual(client.get("/b/abcd").status_code, 404, "regex must full-match")
        self.assertEqual(client.get("/c/not-a-uuid").status_code, 404)
        self.assertEqual(client.get("/d/xyz").status_code, 200)


class MethodTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = App()
        self.calls: list[str] = []

        @self.app.get("/thing")
        def get_thing(request):
            self.calls.append(request.method)
            return {"thing": True}

        @self.app.delete("/thing")
        def delete_thing(request):
            return None

        @self.app.post("/thing")
        def post_thing(request):
            return "posted"

        self.client = self.app.test_client()

    def test_head_runs_get(self) -> None:
        """§2.1 r5: HEAD without a HEAD route runs GET: same status/headers incl. Content-Length, empty body."""
        get = self.client.get("/thing")
        head = self.client.head("/thing")
        self.assertEqual(head.status_code, 200)
        self.assertEqual(head.content, b"")
        self.assertEqual(head.headers.get("content-length"), get.headers.get("content-length"))
        self.assertEqual(head.headers.get("content-type"), "application/json")
        self.assertEqual(self.calls, ["GET", "HEAD"])

    def test_options_auto(self) -> None:
        """§2.1 r6: OPTIONS without a route → 204 + Allow."""
        response = self.client.options("/thing")
        self.assertEqual(response.status_code, 204)
        self.assertEqual(response.headers.get("allow"), "GET, HEAD, POST, DELETE, OPTIONS")
        self.assertEqual(response.content, b"")

    def test_405_with_allow_in_order(self) -> None:
        """§2.1 r7: known path, unregistered method → 405 with Allow in canonical order."""
        response = self.client.put("/thing")
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response.headers.get("allow"), "GET, HEAD, POST, DELETE, OPTIONS")
        self.assertEqual(response.json(), {"error": "Method Not Allowed", "status": 405})

    def test_unknown_method_is_405(self) -> None:
        """§2.1 r7 / bad input: an unknown method on a known path is a 405, not a crash."""
        response = self.client.request("BREW", "/thing")
        self.assertEqual(response.status_code, 405)

    def test_explicit_head_and_options_routes_win(self) -> None:
        """§2.1 r5-r6: explicit HEAD/OPTIONS routes are used when registered."""
        app = App()
        app.get("/x")(lambda r: "get")
        app.head("/x")(lambda r: ("", 200, {"X-Head": "1"}))
        app.options("/x")(lambda r: {"custom": True})
        client = app.test_client()
        self.assertEqual(client.head("/x").headers.get("x-head"), "1")
        self.assertEqual(client.options("/x").json(), {"custom": True})

    def test_404_body_has_path(self) -> None:
        """§2.1 r8: no route → 404, standard body + path."""
        response = self.client.get("/nope/here")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": "Not Found", "status": 404, "path": "/nope/here"})


class GetAllRoutesTests(SynchronousTestCase):
    def test_get_all_routes(self) -> None:
        """§2.1 r9: [(full_path, METHOD)] in registration order, blueprints and websockets included."""
        app = App()
        app.get("/a")(lambda r: None)
        app.route("/b", methods=["POST", "PUT"])(lambda r: None)
        bp = Blueprint("/api")
        bp.get("/users")(lambda r: None)
        bp.websocket("/ws")(lambda ws: None)
        app.register_blueprint(bp)
        self.assertEqual(
            app.get_all_routes(),
            [("/a", "GET"), ("/b", "POST"), ("/b", "PUT"), ("/api/users", "GET"), ("/api/ws", "WEBSOCKET")],
        )


class RegistrationErrorTests(SynchronousTestCase):
    def test_registration_errors(self) -> None:
        """§2.1 errors: malformed paths and duplicate routes are ValueError at registration."""
        app = App()
        bad = [
            "no-slash",
            "/a/{unclosed",
            "/a/{x}}",
            "/a/{x:float}",
            "/a/{*rest}/b",
            "/a/{x}/{x}",
            "/a/pre{x}",
        ]
        for path in bad:
            with self.assertRaises(ValueError, msg=path):
                app.get(path)(lambda r: None)
        with self.assertRaises(ValueError):
            app.get("/c/{x}", constraints={"y": IntConstraint()})(lambda r: None)
        app.get("/users/{id}")(lambda r: None)
        with self.assertRaises(ValueError):
            app.get("/users/{user_id}/")(lambda r: None)

        async def coroutine(request):
            return None

        with self.assertRaises(ValueError):
            app.get("/t", threaded=True)(coroutine)

    def test_duplicate_across_blueprint(self) -> None:
        """§2.1 errors: a blueprint route clashing with an app route is refused."""
        app = App()
        app.get("/api/x")(lambda r: None)
        bp = Blueprint("/api")
        bp.get("/x")(lambda r: None)
        with self.assertRaises(ValueError):
            app.register_blueprint(bp)
