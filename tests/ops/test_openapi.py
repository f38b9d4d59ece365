"""The OpenAPI 3.1.0 document (SPEC_OPERATIONS §9 r1–r4, r8) and the feature-path rules."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from typing import Any, TypedDict
from unittest import mock

import attrs
import msgspec
import pydantic
from openapi_spec_validator import validate
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from cello_twisted import (
    App,
    Blueprint,
    CsrfConfig,
    JwtConfig,
    RateLimitConfig,
    Response,
    SessionConfig,
)
from cello_twisted.errors import ConfigError
from cello_twisted.guards import Authenticated, Role
from cello_twisted.middleware import JwtAuth
from cello_twisted.routing import RegexConstraint
from cello_twisted.server._loader import load_app

from .._support.auth import run_seed
from ..seeds.test_seed_000 import SEED000_HEADERS, SEED000_JWT, SEED000_SESSIONS
from ..seeds.test_seed_001 import (
    SEED001_BLACKLIST,
    SEED001_GUARDS,
    SEED001_HEAD,
    SEED001_LOGIN,
    SEED001_PROFILE,
    SEED001_QUICK_START,
    SEED001_REFRESH,
    SEED001_SKIP,
)
from ..seeds.test_seed_002 import SEED002_FLOW, SEED002_QUICK_START, SEED002_READ_WRITE

SECRET = b"k" * 32


def document(app: App, path: str = "/openapi.json") -> dict[str, Any]:
    response = app.test_client().get(path)
    assert response.status_code == 200, response.text
    assert response.headers.get("content-type") == "application/json"
    return response.json()


def seed_apps() -> dict[str, App]:
    sources = {
        "000 jwt": SEED000_JWT,
        "000 sessions": SEED000_SESSIONS,
        "000 headers": SEED000_HEADERS,
        "001 quick start": SEED001_QUICK_START,
        "001 full page": SEED001_HEAD
        + SEED001_SKIP
        + SEED001_LOGIN
        + SEED001_PROFILE
        + SEED001_REFRESH
        + SEED001_BLACKLIST
        + SEED001_GUARDS,
        "002 quick start": SEED002_QUICK_START,
        "002 read/write": SEED002_READ_WRITE,
        "002 login flow": SEED002_FLOW,
    }
    apps = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seeds' short placeholder secrets
        for name, source in sources.items():
            ns = run_seed(source, Response=Response, authenticate=lambda *a: None)
            apps[name] = ns["app"]
    return apps


# -- an app using every route feature ------------------------------------------------------------


@dataclasses.dataclass
class NewThing:
    name: str
    size: int = 1


@attrs.define
class Thing:
    id: int
    name: str


class Patch(TypedDict):
    name: str


class Query(msgspec.Struct):
    text: str


class PydUser(pydantic.BaseModel):
    name: str
    email: str


def everything_app() -> App:
    app = App()
    app.enable_jwt(JwtConfig(secret=SECRET), required=True, skip_paths=["/public", "/login"])
    app.enable_rate_limit(RateLimitConfig(100, 60, exempt_paths=["/public"]))
    app.enable_sessions(SessionConfig(secret=SECRET, secure=False))
    app.enable_csrf(CsrfConfig(secret=SECRET, exempt_paths=["/login"]))
    app.enable_cors()
    app.enable_compression()
    app.enable_security_headers()

    @app.get("/")
    def index(request: Any) -> dict:
        """Home page.

        Says hello."""
        return {}

    @app.post("/login", name="logIn", tags=["auth"], summary="Log in")
    def login(request: Any) -> dict:
        return {}

    @app.get("/public/{slug}", constraints={"slug": RegexConstraint(r"(?P<word>[a-z]+)-\d+")})
    def public(request: Any) -> dict:
        return {}

    @app.get("/flags/{code}", constraints={"code": RegexConstraint(r"(?i)[a-z]{2}")})
    def flags(request: Any) -> dict:
        return {}

    @app.get("/users/{id:int}", rate_limit=RateLimitConfig(5, 1))
    def user(request: Any) -> dict:
        return {}

    @app.get("/users/{uid:uuid}/posts/{slug:alpha}/{code:alnum}")
    def posts(request: Any) -> dict:
        return {}

    @app.get("/both/{n:int}", constraints={"n": RegexConstraint(r"\d{3}")})
    def both(request: Any) -> dict:
        return {}

    @app.get("/files/{*rest}", description="Any file.")
    def files(request: Any) -> dict:
        return {}

    @app.route("/multi", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def multi(request: Any) -> dict:
        return {}

    @app.post("/things", body=NewThing, response=Thing, guards=[Authenticated()])
    def new_thing(request: Any) -> Thing:
        return Thing(1, request.validated.name)

    @app.patch("/things/{id:int}", body=Patch, response=list[Thing])
    def patch_thing(request: Any) -> list:
        return []

    @app.post("/search", body=Query, response=list[PydUser], threaded=True)
    def search(request: Any) -> list:
        return []

    @app.put("/users/{id:int}/profile", body=PydUser, response=PydUser)
    async def profile(request: Any) -> PydUser:
        return request.validated

    @app.get("/hidden", include_in_schema=False)
    def hidden(request: Any) -> dict:
        return {}

    @app.websocket("/ws/{room}", subprotocols=["chat"])
    async def ws(sock: Any) -> None:
        """Chat room."""

    admin = Blueprint("/admin", guards=[Role(["admin"])])
    admin.enable_rate_limit(RateLimitConfig(10, 60))

    @admin.get("/stats", tags=["admin"])
    def stats(request: Any) -> dict:
        return {}

    inner = Blueprint("/v2")

    @inner.delete("/items/{id:int}")
    def drop(request: Any) -> dict:
        return {}

    admin.register(inner)
    app.register_blueprint(admin)
    app.enable_openapi(
        title="Everything", version="2.0.0", description="All route features.", servers=["https://api.example.com"]
    )
    return app


class SpecValidityTests(SynchronousTestCase):
    """§9 r1: the document passes openapi-spec-validator."""

    def test_seed_example_apps(self) -> None:
        """Each seed example app, with enable_openapi() added, serves a valid 3.1.0 document."""
        for name, app in seed_apps().items():
            app.enable_openapi()
            doc = document(app)
            self.assertEqual(doc["openapi"], "3.1.0", name)
            validate(doc)
            self.assertTrue(doc["paths"], name)

    def test_every_route_feature(self) -> None:
        """An app using every route feature serves a valid document."""
        validate(document(everything_app()))

    def test_example_typed_api(self) -> None:
        """examples/typed_api.py serves a valid document."""
        path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "typed_api.py")
        self.addCleanup(sys.modules.pop, "typed_api", None)
        validate(document(load_app(path)))


class DocumentContentTests(SynchronousTestCase):
    """§9 r2–r4 and r8 on the every-feature app."""

    built: dict[str, Any] | None = None

    def setUp(self) -> None:
        # Built once for the class (setUpClass is not run under trial).
        if DocumentContentTests.built is None:
            DocumentContentTests.built = document(everything_app())
        self.doc = DocumentContentTests.built

    def op(self, path: str, method: str = "get") -> dict[str, Any]:
        return self.doc["paths"][path][method]

    def test_info_and_servers(self) -> None:
        """title, version, description and servers come from enable_openapi's arguments."""
        self.assertEqual(
            self.doc["info"], {"title": "Everything", "version": "2.0.0", "description": "All route features."}
        )
        self.assertEqual(self.doc["servers"], [{"url": "https://api.example.com"}])

    def test_template_paths(self) -> None:
        """r2: converters are dropped from templates, {*rest} becomes {rest}, blueprints prefix paths."""
        paths = set(self.doc["paths"])
        for expected in (
            "/",
            "/users/{id}",
            "/users/{uid}/posts/{slug}/{code}",
            "/files/{rest}",
            "/admin/stats",
            "/admin/v2/items/{id}",
            "/things/{id}",
        ):
            self.assertIn(expected, paths)
        self.assertFalse([p for p in paths if ":" in p or "*" in p])

    def test_parameter_schemas(self) -> None:
        """r2: required path parameters with schemas from their constraints."""

        def params(path: str, method: str = "get") -> dict[str, dict[str, Any]]:
            out = {}
            for p in self.op(path, method)["parameters"]:
                self.assertEqual((p["in"], p["required"]), ("path", True))
                out[p["name"]] = p["schema"]
            return out

        self.assertEqual(params("/users/{id}"), {"id": {"type": "integer"}})
        posts = params("/users/{uid}/posts/{slug}/{code}")
        self.assertEqual(posts["uid"], {"type": "string", "format": "uuid"})
        self.assertEqual(posts["slug"], {"type": "string", "pattern": "^[A-Za-z]+$"})
        self.assertEqual(posts["code"], {"type": "string", "pattern": "^[A-Za-z0-9]+$"})
        self.assertEqual(params("/public/{slug}")["slug"], {"type": "string", "pattern": r"^(?:(?:[a-z]+)-\d+)$"})
        self.assertEqual(params("/flags/{code}")["code"]["type"], "string")  # (?i) has no ECMA spelling
        self.assertNotIn("pattern", params("/flags/{code}")["code"])
        self.assertEqual(params("/both/{n}")["n"], {"type": "integer"})
        self.assertEqual(params("/files/{rest}")["rest"]["type"], "string")
        self.assertEqual(params("/things/{id}", "patch"), {"id": {"type": "integer"}})

    def test_operation_ids(self) -> None:
        """r3: operationId is name= if given, else __qualname__, unique across the document."""
        self.assertEqual(self.op("/login", "post")["operationId"], "logIn")
        self.assertEqual(self.op("/")["operationId"], "everything_app.<locals>.index")
        ids = [op["operationId"] for item in self.doc["paths"].values() for op in item.values()]
        self.assertEqual(len(ids), len(set(ids)))
        multi = [op["operationId"] for op in self.doc["paths"]["/multi"].values()]
        self.assertIn("everything_app.<locals>.multi", multi)
        self.assertIn("everything_app.<locals>.multi_2", multi)

    def test_summary_description_tags(self) -> None:
        """r3: summary/tags from options; description from options, else the docstring."""
        login = self.op("/login", "post")
        self.assertEqual((login["summary"], login["tags"]), ("Log in", ["auth"]))
        self.assertEqual(self.op("/files/{rest}")["description"], "Any file.")
        self.assertEqual(self.op("/")["description"], "Home page.\n\nSays hello.")
        self.assertNotIn("description", self.op("/users/{id}"))

    def test_request_bodies_and_response_schemas(self) -> None:
        """r3: requestBody from body=, the 200 schema from response=, components from msgspec/pydantic."""
        schemas = self.doc["components"]["schemas"]
        things = self.op("/things", "post")
        self.assertEqual(
            things["requestBody"],
            {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}}}},
        )
        self.assertEqual(
            things["responses"]["200"]["content"]["application/json"]["schema"], {"$ref": "#/components/schemas/Thing"}
        )
        self.assertEqual(schemas["NewThing"]["required"], ["name"])
        self.assertEqual(set(schemas["Thing"]["properties"]), {"id", "name"})
        self.assertEqual(set(schemas["Patch"]["required"]), {"name"})
        self.assertIn("Query", schemas)
        search_ok = self.op("/search", "post")["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(search_ok, {"type": "array", "items": {"$ref": "#/components/schemas/PydUser"}})
        self.assertEqual(set(schemas["PydUser"]["required"]), {"name", "email"})
        self.assertNotIn("content", self.op("/users/{id}")["responses"]["200"])

    def test_error_responses(self) -> None:
        """r3: 400/413/422 with body=, 400/413 on other writes, 401 JWT, 403 guards/CSRF, 429 limits."""

        def statuses(path: str, method: str = "get") -> set[str]:
            return set(self.op(path, method)["responses"]) - {"200"}

        self.assertEqual(statuses("/things", "post"), {"400", "401", "403", "413", "422", "429"})
        self.assertEqual(statuses("/login", "post"), {"400", "413", "429"})  # skipped by JWT, exempt from CSRF
        self.assertEqual(statuses("/public/{slug}"), {"404"})  # skipped by JWT, exempt from the limit
        self.assertEqual(statuses("/users/{id}"), {"401", "404", "429"})
        self.assertEqual(statuses("/multi", "post"), {"400", "401", "403", "413", "429"})
        self.assertEqual(statuses("/multi", "delete"), {"401", "403", "429"})
        self.assertEqual(statuses("/admin/stats"), {"401", "403", "429"})
        error = self.op("/things", "post")["responses"]["422"]["content"]["application/json"]["schema"]
        self.assertEqual(error, {"$ref": "#/components/schemas/Error"})
        self.assertIn("errors", self.doc["components"]["schemas"]["Error"]["properties"])

    def test_security(self) -> None:
        """r4: bearerAuth in components; operations requiring a token list it, skipped paths don't."""
        self.assertEqual(
            self.doc["components"]["securitySchemes"],
            {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        )
        self.assertEqual(self.op("/users/{id}")["security"], [{"bearerAuth": []}])
        self.assertNotIn("security", self.op("/login", "post"))
        self.assertNotIn("security", self.op("/public/{slug}"))

    def test_left_out(self) -> None:
        """r8: include_in_schema=False, WebSocket routes and the feature paths are not in paths."""
        paths = set(self.doc["paths"])
        for absent in ("/hidden", "/ws/{room}", "/openapi.json", "/docs", "/docs/{asset}"):
            self.assertNotIn(absent, paths)
        ws = self.doc["x-websocket"]["/ws/{room}"]
        self.assertEqual(ws["subprotocols"], ["chat"])
        self.assertEqual(ws["description"], "Chat room.")
        self.assertEqual(ws["parameters"][0]["name"], "room")

    def test_optional_jwt_lists_no_security(self) -> None:
        """r4: in optional mode (enable_jwt's default) nothing requires a token."""
        app = App()
        app.enable_jwt(JwtConfig(secret=SECRET))
        app.get("/me")(lambda request: {})
        app.enable_openapi()
        doc = document(app)
        self.assertIn("bearerAuth", doc["components"]["securitySchemes"])
        self.assertNotIn("security", doc["paths"]["/me"]["get"])
        self.assertNotIn("401", doc["paths"]["/me"]["get"]["responses"])

    def test_app_guards_apply_to_every_operation(self) -> None:
        """r3: a guard added with app.add_guard guards every route, so every operation lists 401/403."""
        app = App()
        app.add_guard(lambda request: True)
        app.get("/a")(lambda request: {})
        app.post("/b")(lambda request: {})
        app.enable_openapi()
        doc = document(app)
        for item in doc["paths"].values():
            for op in item.values():
                self.assertLessEqual({"401", "403"}, set(op["responses"]))
        self.assertEqual(app.test_client().get("/openapi.json").status_code, 200)

    def test_no_jwt_no_security_scheme(self) -> None:
        """r4: without JWT there is no securitySchemes entry."""
        app = App()
        app.get("/")(lambda request: {})
        app.enable_openapi()
        self.assertNotIn("securitySchemes", document(app)["components"])


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    resolved: dict[str, Any] = doc["components"]["schemas"][ref[len(prefix) :]]
    return resolved


class ComponentNameTests(SynchronousTestCase):
    """Models of different libraries that share a name each keep their own component."""

    def test_pydantic_and_msgspec_types_with_the_same_name(self) -> None:
        """A dataclass and a pydantic model both named Item: the document is served (200, valid),
        each operation's schema describes its own type, and nested references follow the rename."""

        @dataclasses.dataclass
        class Item:
            count: int

        PItem = pydantic.create_model("Item", label=(str, ...))
        Basket = pydantic.create_model("Basket", items=(list[PItem], ...))  # type: ignore[valid-type]

        app = App()
        app.post("/plain", body=Item)(lambda request: {})
        app.post("/pyd", body=PItem)(lambda request: {})
        app.post("/basket", body=Basket, response=list[PItem])(lambda request: {})  # type: ignore[valid-type]
        app.enable_openapi()
        doc = document(app)
        validate(doc)

        def body_schema(path: str) -> dict[str, Any]:
            schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            return _resolve(doc, schema)

        self.assertEqual(set(body_schema("/plain")["properties"]), {"count"})
        self.assertEqual(set(body_schema("/pyd")["properties"]), {"label"})
        nested = body_schema("/basket")["properties"]["items"]["items"]
        self.assertEqual(set(_resolve(doc, nested)["properties"]), {"label"})
        listed = doc["paths"]["/basket"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(set(_resolve(doc, listed["items"])["properties"]), {"label"})
        names = set(doc["components"]["schemas"])
        self.assertIn("Item", names)
        self.assertIn("Item_2", names)

    def test_a_model_named_error_keeps_the_error_body(self) -> None:
        """A user model named Error is listed under another name; error responses still point at
        the standard error body."""

        @dataclasses.dataclass
        class Error:
            code: int

        app = App()
        app.post("/report", body=Error)(lambda request: {})
        app.enable_openapi()
        doc = document(app)
        validate(doc)
        op = doc["paths"]["/report"]["post"]
        body = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
        self.assertEqual(set(body["properties"]), {"code"})
        error = _resolve(doc, op["responses"]["422"]["content"]["application/json"]["schema"])
        self.assertEqual(set(error["required"]), {"error", "status"})


class DocumentLifecycleTests(SynchronousTestCase):
    """r1: built when first requested and again after routes change."""

    def test_rebuilt_after_routes_change(self) -> None:
        """A route added after the first request appears in the next document."""
        app = App()
        app.get("/a")(lambda request: {})
        app.enable_openapi()
        client = app.test_client()
        first = client.get("/openapi.json")
        self.assertEqual(set(first.json()["paths"]), {"/a"})
        self.assertEqual(client.get("/openapi.json").content, first.content)
        bp = Blueprint("/bp")
        app.register_blueprint(bp)
        bp.get("/b")(lambda request: {})  # registration is live
        self.assertEqual(set(client.get("/openapi.json").json()["paths"]), {"/a", "/bp/b"})

    def test_custom_paths_head_and_replacement(self) -> None:
        """Custom path/docs_path; HEAD works; calling enable_openapi again replaces the old paths."""
        app = App()
        app.get("/a")(lambda request: {})
        app.enable_openapi(path="/spec.json", docs_path="/api-docs")
        client = app.test_client()
        self.assertEqual(client.get("/spec.json").status_code, 200)
        self.assertEqual(client.head("/spec.json").status_code, 200)
        self.assertEqual(client.get("/api-docs").status_code, 200)
        self.assertEqual(client.get("/openapi.json").status_code, 404)
        app.enable_openapi(docs_path=None)
        self.assertEqual(client.get("/spec.json").status_code, 404)
        self.assertEqual(client.get("/api-docs").status_code, 404)
        self.assertEqual(client.get("/openapi.json").status_code, 200)
        self.assertEqual(client.get("/docs").status_code, 404)

    def test_clash_with_user_route(self) -> None:
        """A user route already at the document's path is a ValueError; the app keeps working."""
        app = App()
        app.get("/openapi.json")(lambda request: {"mine": True})
        with self.assertRaises(ValueError):
            app.enable_openapi()
        client = app.test_client()
        self.assertEqual(client.get("/openapi.json").json(), {"mine": True})
        self.assertEqual(client.get("/docs").status_code, 404)

    def test_bad_arguments(self) -> None:
        """Invalid settings raise ConfigError naming the field and the bad value; no route is added."""
        app = App()
        for kwargs, field, value in (
            ({"path": "openapi.json"}, "path", "openapi.json"),
            ({"path": "/"}, "path", "/"),
            ({"path": "/{x}.json"}, "path", "/{x}.json"),
            ({"docs_path": "docs"}, "docs_path", "docs"),
            ({"docs_path": "/docs", "path": "/docs/openapi.json"}, "path", "/docs/openapi.json"),
            ({"version": ""}, "version", ""),
            ({"title": 3}, "title", 3),
            ({"description": b"x"}, "description", b"x"),
            ({"servers": [3]}, "servers", 3),
            ({"servers": [{"description": "no url"}]}, "servers", {"description": "no url"}),
        ):
            with self.assertRaises(ConfigError) as caught:
                app.enable_openapi(**kwargs)
            error = caught.exception
            self.assertEqual((error.field, error.value), (f"OpenApiSettings.{field}", value), kwargs)
            self.assertIn(f"OpenApiSettings.{field}", str(error))
        self.assertEqual(app.routes, [])
        self.assertEqual(app.test_client().get("/openapi.json").status_code, 404)

    def test_settings_are_frozen(self) -> None:
        """The settings of an enabled document cannot be changed afterwards."""
        feature = App().enable_openapi(title="T", servers=["https://api.example"])
        self.assertEqual(feature.settings.title, "T")
        self.assertEqual(feature.settings.servers, ({"url": "https://api.example"},))
        with self.assertRaises(attrs.exceptions.FrozenInstanceError):
            feature.settings.title = "other"  # type: ignore[misc]

    def test_without_msgspec_names_the_extra(self) -> None:
        """enable_openapi without msgspec: ImportError naming the extra to install."""
        with mock.patch.dict(sys.modules, {"msgspec": None}):
            with self.assertRaises(ImportError) as caught:
                App().enable_openapi()
        self.assertIn("pip install 'cello-twisted[openapi]'", str(caught.exception))
        self.assertIn("[validation]", str(caught.exception))

    def test_mounted_app_lists_its_prefix_as_server(self) -> None:
        """Served below a prefix (embedding), the document names that prefix as its server."""
        app = App()
        app.get("/a")(lambda request: {})
        app.enable_openapi()
        self.assertNotIn("servers", document(app))
        root = Resource()
        root.putChild(b"api", app.resource())
        site = Site(root)
        site.reactor = Clock()
        proto = site.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = transport.value()
        proto.connectionLost(ConnectionDone())
        self.assertEqual(json.loads(raw.split(b"\r\n\r\n", 1)[1])["servers"], [{"url": "/api"}])


class FeaturePathTests(SynchronousTestCase):
    """Feature paths skip rate limits, JWT, CSRF, sessions and logging; guards= still apply."""

    def test_strict_jwt_rate_limit_csrf_sessions(self) -> None:
        """Under strict JWT, a 1-request limit, CSRF and sessions, the document and docs stay reachable."""
        app = App()
        app.use(JwtAuth(JwtConfig(secret=SECRET)))
        app.enable_rate_limit(RateLimitConfig(1, 60))
        app.enable_csrf(CsrfConfig(secret=SECRET))
        app.enable_sessions(SessionConfig(secret=SECRET, secure=False))
        app.get("/x")(lambda request: {})
        app.enable_openapi()
        client = app.test_client()
        for _ in range(3):
            for path in ("/openapi.json", "/docs", "/docs/swagger-ui.css"):
                response = client.get(path)
                self.assertEqual(response.status_code, 200, path)
                self.assertIsNone(response.headers.get("x-ratelimit-limit"))
                self.assertIsNone(response.headers.get("set-cookie"))
        self.assertEqual(client.get("/x").status_code, 401)  # the app itself stays protected

    def test_not_logged(self) -> None:
        """Requests for feature paths write no access-log line; other paths do."""
        lines: list[str] = []

        def observer(event: dict) -> None:
            if event.get("log_namespace") == "cello_twisted.access":
                lines.append(event["path"])

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        app = App()
        app.enable_logging(colors=False)
        app.get("/x")(lambda request: {})
        app.enable_openapi()
        client = app.test_client()
        client.get("/openapi.json")
        client.get("/docs")
        client.get("/docs/swagger-ui.css")
        client.get("/x")
        self.assertEqual(lines, ["/x"])

    def test_guards_apply(self) -> None:
        """guards= protect the document and the docs page; a valid token satisfies Role guards."""
        app = App()
        auth = app.use(JwtAuth(JwtConfig(secret=SECRET)))
        app.get("/x")(lambda request: {})
        app.enable_openapi(guards=[Role(["admin"])])
        client = app.test_client()
        self.assertEqual(client.get("/openapi.json").status_code, 401)
        self.assertEqual(client.get("/docs").status_code, 401)
        user = {"Authorization": "Bearer " + auth.create_token({"sub": "u", "roles": ["user"]})}
        self.assertEqual(client.get("/openapi.json", headers=user).status_code, 403)
        admin = {"Authorization": "Bearer " + auth.create_token({"sub": "a", "roles": ["admin"]})}
        self.assertEqual(client.get("/openapi.json", headers=admin).status_code, 200)
        self.assertEqual(client.get("/docs/swagger-ui-bundle.js", headers=admin).status_code, 200)
