"""``app.enable_openapi``: an OpenAPI 3.1.0 document built from the route table (SPEC_OPERATIONS §9).

The document is built from the routes *as served* (the compiled chains: blueprint
prefixes, the middleware and guards that really apply), the first time it is asked
for and again after the table changes; between changes every request gets the same
bytes. Model schemas come from msgspec or pydantic (``_schemas``); this module only
arranges them into paths, operations, responses and security requirements.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from attrs import Attribute, field, frozen

from .. import _json
from .._validators import fail, non_empty_str
from ..errors import ConfigError, reason_phrase
from ..middleware._util import any_path_matches
from ..middleware.csrf import Csrf
from ..middleware.jwt import JwtAuth
from ..middleware.ratelimit import RateLimit
from ..response import JSON_TYPE, Response
from ..routing._pattern import parse_pattern
from ._body import require_msgspec
from ._schemas import ERROR_SCHEMA, REF, Mode, ModelSchemas, param_schema

if TYPE_CHECKING:
    from ..request import Request
    from ..routing._compile import CompiledRoute
    from ..routing._table import RouteSpec
    from ._docs import DocsPage

OPENAPI_VERSION = "3.1.0"
_EXTRA = "pip install 'cello-twisted[openapi]' (or [validation] without the /docs page)"
_UNSAFE_BODY_METHODS = ("POST", "PUT", "PATCH")
_ERROR_REF = {"$ref": REF.format(name="Error")}

Handler = Callable[["Request"], Response]


class DescribedApp(Protocol):
    """What the document needs of an App (declared here: app.py sits above)."""

    @property
    def middleware(self) -> Sequence[object]: ...

    def compiled_routes(self) -> tuple[CompiledRoute, ...]: ...


# -- settings ----------------------------------------------------------------------------------


def _is_literal_path(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/") and "{" not in value and value != "/"


def _valid_path(instance: OpenApiSettings, attribute: Attribute[str], value: object) -> None:
    if not _is_literal_path(value):
        fail(instance, attribute.name, value, "a literal path below '/' such as '/openapi.json'")


def _valid_docs_path(instance: OpenApiSettings, attribute: Attribute[str | None], value: object) -> None:
    if value is None:
        return
    if not _is_literal_path(value):
        fail(instance, attribute.name, value, "a literal path below '/' such as '/docs', or None")
    assert isinstance(value, str)
    path = instance.path
    if path.rstrip("/") == value.rstrip("/") or any_path_matches([value], path):
        fail(instance, "path", path, f"a path outside docs_path {value!r}")


def _default_title(value: object) -> object:
    return "Cello API" if value is None else value


def _valid_title(instance: OpenApiSettings, attribute: Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        fail(instance, attribute.name, value, "a str, or None for 'Cello API'")


def _optional_str(instance: OpenApiSettings, attribute: Attribute[str | None], value: object) -> None:
    if value is not None and not isinstance(value, str):
        fail(instance, attribute.name, value, "a str or None")


def _servers(value: Iterable[str | dict[str, Any]] | None) -> tuple[dict[str, Any], ...]:
    """Converter: URL strings and ``{"url": ...}`` dicts → a tuple of Server Objects."""
    out: list[dict[str, Any]] = []
    for server in value or ():
        if isinstance(server, str):
            out.append({"url": server})
        elif isinstance(server, dict) and isinstance(server.get("url"), str):
            out.append(dict(server))
        else:
            raise ConfigError("OpenApiSettings.servers", server, "URL strings or {'url': str, ...} dicts")
    return tuple(out)


@frozen(init=False, eq=False)
class OpenApiSettings:
    """What ``enable_openapi`` was given, checked once.

    Raises:
        ConfigError: a path that is not a literal path below ``/`` (or lies inside
            ``docs_path``), a non-str title or description, an empty version, or a
            server that is neither a URL string nor a dict with a ``url``.
    """

    path: str = field(validator=_valid_path)
    docs_path: str | None = field(validator=_valid_docs_path)
    title: str = field(converter=_default_title, validator=_valid_title)
    version: str = field(validator=non_empty_str)
    description: str | None = field(validator=_optional_str)
    servers: tuple[dict[str, Any], ...] = field(converter=_servers)

    def __init__(
        self,
        path: str = "/openapi.json",
        docs_path: str | None = "/docs",
        title: str | None = None,
        version: str = "0.1.0",
        description: str | None = None,
        servers: Sequence[str | dict[str, Any]] | None = None,
    ) -> None:
        self.__attrs_init__(path, docs_path, title, version, description, servers)


# -- the feature -------------------------------------------------------------------------------


class OpenApi:
    """The installed feature: the document's routes and, when asked, the document itself."""

    def __init__(self, settings: OpenApiSettings, app: DescribedApp) -> None:
        require_msgspec(f"app.enable_openapi ({_EXTRA})")
        self.settings = settings
        self.app = app
        self.docs: DocsPage | None = None
        if settings.docs_path is not None:
            from ._docs import DocsPage

            self.docs = DocsPage(settings.docs_path, settings.path, settings.title)
        self._cache: dict[str, bytes] = {}
        self._built_for: tuple[CompiledRoute, ...] | None = None

    def routes(self) -> list[tuple[str, Handler]]:
        """``(path, GET handler)`` pairs for the app to register as feature paths."""
        out: list[tuple[str, Handler]] = [(self.settings.path, self.serve_document)]
        if self.docs is not None:
            base = self.docs.docs_path
            out.append((base, self.docs.page))
            out.append((base.rstrip("/") + "/{*asset}", self.docs.asset))
        return out

    def serve_document(self, request: Request) -> Response:
        response = Response(self.document_bytes(request.root_path), 200, None, JSON_TYPE)
        response.set_header("Cache-Control", "no-cache")
        return response

    def document_bytes(self, root_path: str = "") -> bytes:
        """The document as served below ``root_path``, built once per route-table version."""
        routes = self.app.compiled_routes()
        if routes is not self._built_for:  # the table changed (or first request): rebuild
            self._cache = {}
            self._built_for = routes
        body = self._cache.get(root_path)
        if body is None:
            body = self._cache[root_path] = _json.dumpb(self.document(root_path))
        return body

    def document(self, root_path: str = "") -> dict[str, Any]:
        """The OpenAPI 3.1.0 document of the app as a dict."""
        return build_document(self.app.compiled_routes(), self.app, self.settings, root_path)


# -- the document ------------------------------------------------------------------------------


def build_document(
    routes: Sequence[CompiledRoute], app: DescribedApp, settings: OpenApiSettings, root_path: str
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of ``routes`` (``app.compiled_routes()``) as a dict."""
    described = [r for r in routes if r.spec.include_in_schema]
    models = ModelSchemas(_model_entries(described), reserved={"Error": ERROR_SCHEMA})
    jwt_installed = any(isinstance(mw, JwtAuth) for r in routes for mw in r.middleware) or any(
        isinstance(mw, JwtAuth) for mw in app.middleware
    )
    operation_ids: set[str] = set()
    paths: dict[str, dict[str, Any]] = {}
    websockets: dict[str, dict[str, Any]] = {}
    for route in described:
        template, parameters = _template(route)
        op_id = _unique(_base_operation_id(route.spec), operation_ids)
        if route.method == "WEBSOCKET":
            websockets[template] = _websocket_entry(route, op_id, parameters)
            continue
        paths.setdefault(template, {})[route.method.lower()] = _operation(route, op_id, parameters, models)
    info: dict[str, Any] = {"title": settings.title, "version": settings.version}
    if settings.description:
        info["description"] = settings.description
    doc: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    servers = [dict(s) for s in settings.servers] or ([{"url": root_path}] if root_path else [])
    if servers:
        doc["servers"] = servers
    doc["paths"] = paths
    components: dict[str, Any] = {"schemas": models.components}
    if jwt_installed:
        components["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    doc["components"] = components
    if websockets:
        doc["x-websocket"] = websockets
    return doc


def _model_entries(routes: Sequence[CompiledRoute]) -> list[tuple[Any, Mode]]:
    entries: list[tuple[Any, Mode]] = []
    for route in routes:
        if route.spec.body is not None:
            entries.append((route.spec.body, "validation"))
    for route in routes:
        if route.spec.response is not None:
            entries.append((route.spec.response, "serialization"))
    return entries


def _template(route: CompiledRoute) -> tuple[str, list[dict[str, Any]]]:
    """``/users/{id:int}/{*rest}`` → ``/users/{id}/{rest}`` and its path parameters."""
    parts: list[str] = []
    parameters: list[dict[str, Any]] = []
    for segment in parse_pattern(route.path, route.spec.constraints):
        if segment.kind == "lit":
            parts.append(segment.value)
            continue
        parts.append("{" + segment.value + "}")
        schema = param_schema(segment.constraint) if segment.kind == "param" else {"type": "string", "minLength": 1}
        parameter: dict[str, Any] = {"name": segment.value, "in": "path", "required": True, "schema": schema}
        if segment.kind == "wild":
            parameter["description"] = "The rest of the path (may contain '/')."
        parameters.append(parameter)
    return "/" + "/".join(parts), parameters


def _base_operation_id(spec: RouteSpec) -> str:
    if spec.named:
        return str(spec.name)
    return getattr(spec.handler, "__qualname__", None) or str(spec.name or "operation")


def _unique(base: str, seen: set[str]) -> str:
    candidate, n = base, 1
    while candidate in seen:
        n += 1
        candidate = f"{base}_{n}"
    seen.add(candidate)
    return candidate


def _error(status: int) -> dict[str, Any]:
    return {"description": reason_phrase(status), "content": {JSON_TYPE: {"schema": _ERROR_REF}}}


def _operation(route: CompiledRoute, op_id: str, parameters: list[dict[str, Any]], models: ModelSchemas) -> dict[str, Any]:
    spec = route.spec
    op: dict[str, Any] = {"operationId": op_id}
    if spec.tags:
        op["tags"] = list(spec.tags)
    if spec.summary:
        op["summary"] = spec.summary
    description = spec.description or inspect.getdoc(spec.handler)
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {JSON_TYPE: {"schema": models.schema(spec.body, "validation")}},
        }
    ok: dict[str, Any] = {"description": "Successful response"}
    if spec.response is not None:
        ok["content"] = {JSON_TYPE: {"schema": models.schema(spec.response, "serialization")}}
    responses: dict[str, Any] = {"200": ok}
    statuses: set[int] = set()
    if spec.body is not None:
        statuses |= {400, 413, 422}
    elif route.method in _UNSAFE_BODY_METHODS:
        statuses |= {400, 413}
    if parameters:
        statuses.add(404)  # a value that fails its constraint matches no route
    token_required = _token_required(route)
    if token_required:
        statuses.add(401)
    if route.guards:
        statuses |= {401, 403}  # guards refuse (403) or ask for authentication first (401)
    if _csrf_checked(route):
        statuses.add(403)
    if _rate_limited(route):
        statuses.add(429)
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    op["responses"] = responses
    if token_required:
        op["security"] = [{"bearerAuth": []}]
    return op


def _websocket_entry(route: CompiledRoute, op_id: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    spec = route.spec
    entry: dict[str, Any] = {"operationId": op_id}
    description = inspect.getdoc(spec.handler)
    if description:
        entry["description"] = description
    if parameters:
        entry["parameters"] = parameters
    subprotocols = spec.options.get("subprotocols")
    if subprotocols:
        entry["subprotocols"] = list(subprotocols)
    if "max_message_size" in spec.options:
        entry["maxMessageSize"] = spec.options["max_message_size"]
    if _token_required(route):
        entry["security"] = [{"bearerAuth": []}]
    return entry


def _token_required(route: CompiledRoute) -> bool:
    """A strict JwtAuth applies and the route's path is not one of its skipped paths."""
    for mw in route.middleware:
        if isinstance(mw, JwtAuth) and mw.required and not route.spec.feature_path:
            if not (mw.skip_paths and any_path_matches(mw.skip_paths, route.path)):
                return True
    return False


def _csrf_checked(route: CompiledRoute) -> bool:
    for mw in route.middleware:
        if isinstance(mw, Csrf):
            config = mw.config
            if route.method not in config.safe_methods and not (
                config.exempt_paths and any_path_matches(config.exempt_paths, route.path)
            ):
                return True
    return False


def _rate_limited(route: CompiledRoute) -> bool:
    for mw in route.middleware:
        if isinstance(mw, RateLimit):
            exempt = mw.config.exempt_paths
            if not (exempt and any_path_matches(exempt, route.path)):
                return True
    return False
