"""``app.enable_openapi``: an OpenAPI 3.1.0 document built from the route table (SPEC_OPERATIONS §9).

The document is built from the routes *as served* (the compiled chains: blueprint
prefixes, the middleware and guards that really apply), the first time it is asked
for and again after the table changes; between changes every request gets the same
bytes. Model schemas come from msgspec or pydantic (``_schemas``); this module only
arranges them into paths, operations, responses and security requirements.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .. import _json
from ..errors import ConfigError, reason_phrase
from ..middleware._util import any_path_matches
from ..middleware.csrf import Csrf
from ..middleware.jwt import JwtAuth
from ..middleware.ratelimit import RateLimit
from ..response import JSON_TYPE, Response
from ..routing._pattern import parse_pattern
from ._body import require_msgspec
from ._schemas import ERROR_SCHEMA, REF, ModelSchemas, param_schema

OPENAPI_VERSION = "3.1.0"
_EXTRA = "pip install 'cello-twisted[openapi]' (or [validation] without the /docs page)"
_UNSAFE_BODY_METHODS = ("POST", "PUT", "PATCH")
_ERROR_REF = {"$ref": REF.format(name="Error")}


class OpenApiSettings:
    """What ``enable_openapi`` was given, checked once (``ConfigError`` names the field)."""

    __slots__ = ("path", "docs_path", "title", "version", "description", "servers")

    def __init__(
        self,
        path: str = "/openapi.json",
        docs_path: str | None = "/docs",
        title: str | None = None,
        version: str = "0.1.0",
        description: str | None = None,
        servers: Sequence[str | dict[str, Any]] | None = None,
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/") or "{" in path or path == "/":
            raise ConfigError(f"path must be a literal path below '/' such as '/openapi.json', not {path!r}")
        if docs_path is not None and (
            not isinstance(docs_path, str) or not docs_path.startswith("/") or "{" in docs_path or docs_path == "/"
        ):
            raise ConfigError(f"docs_path must be a literal path below '/' such as '/docs', or None; not {docs_path!r}")
        if docs_path is not None and (
            path.rstrip("/") == docs_path.rstrip("/") or any_path_matches([docs_path], path)
        ):
            raise ConfigError(f"path {path!r} must lie outside docs_path {docs_path!r}")
        for name, value in (("title", title), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a str or None, not {value!r}")
        if not isinstance(version, str) or not version:
            raise ConfigError(f"version must be a non-empty str, not {version!r}")
        out: list[dict[str, Any]] = []
        for server in servers or ():
            if isinstance(server, str):
                out.append({"url": server})
            elif isinstance(server, dict) and isinstance(server.get("url"), str):
                out.append(dict(server))
            else:
                raise ConfigError(f"servers must hold URL strings or {{'url': ...}} dicts, not {server!r}")
        self.path = path
        self.docs_path = docs_path
        self.title = title or "Cello API"
        self.version = version
        self.description = description
        self.servers = out


class OpenApi:
    """The installed feature: the document's routes and, when asked, the document itself."""

    def __init__(self, settings: OpenApiSettings) -> None:
        require_msgspec(f"app.enable_openapi ({_EXTRA})")
        self.settings = settings
        self.docs = None
        if settings.docs_path is not None:
            from ._docs import DocsPage

            self.docs = DocsPage(settings.docs_path, settings.path, settings.title)
        self._cache: dict[str, bytes] = {}
        self._built_for: Any = None

    def routes(self) -> list[tuple[str, Callable[[Any], Any]]]:
        """``(path, GET handler)`` pairs for the app to register as feature paths."""
        out: list[tuple[str, Callable[[Any], Any]]] = [(self.settings.path, self.serve_document)]
        if self.docs is not None:
            base = self.settings.docs_path.rstrip("/")  # type: ignore[union-attr]
            out.append((base, self.docs.page))
            out.append((base + "/{*asset}", self.docs.asset))
        return out

    def serve_document(self, request: Any) -> Response:
        body = self.document_bytes(request.app, request.root_path)
        response = Response(body, 200, None, JSON_TYPE)
        response.set_header("Cache-Control", "no-cache")
        return response

    def document_bytes(self, app: Any, root_path: str = "") -> bytes:
        routes = app.compiled_routes()
        if routes is not self._built_for:  # the table changed (or first request): rebuild
            self._cache = {}
            self._built_for = routes
        body = self._cache.get(root_path)
        if body is None:
            body = self._cache[root_path] = _json.dumpb(self.document(app, root_path))
        return body

    def document(self, app: Any, root_path: str = "") -> dict[str, Any]:
        """The OpenAPI 3.1.0 document of ``app`` as a dict."""
        return build_document(app.compiled_routes(), app, self.settings, root_path)


# -- the document ------------------------------------------------------------------------------


def build_document(routes: Sequence[Any], app: Any, settings: OpenApiSettings, root_path: str) -> dict[str, Any]:
    described = [r for r in routes if r.spec.include_in_schema]
    models = ModelSchemas(
        [(r.spec.body, "validation") for r in described if r.spec.body is not None]
        + [(r.spec.response, "serialization") for r in described if r.spec.response is not None]
    )
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
    servers = settings.servers or ([{"url": root_path}] if root_path else [])
    if servers:
        doc["servers"] = servers
    doc["paths"] = paths
    components: dict[str, Any] = {"schemas": {"Error": ERROR_SCHEMA, **models.components}}
    if jwt_installed:
        components["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    doc["components"] = components
    if websockets:
        doc["x-websocket"] = websockets
    return doc


def _template(route: Any) -> tuple[str, list[dict[str, Any]]]:
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


def _base_operation_id(spec: Any) -> str:
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


def _operation(route: Any, op_id: str, parameters: list[dict[str, Any]], models: ModelSchemas) -> dict[str, Any]:
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


def _websocket_entry(route: Any, op_id: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
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


def _token_required(route: Any) -> bool:
    """A strict JwtAuth applies and the route's path is not one of its skipped paths."""
    for mw in route.middleware:
        if isinstance(mw, JwtAuth) and mw.required and not route.spec.feature_path:
            if not (mw.skip_paths and any_path_matches(mw.skip_paths, route.path)):
                return True
    return False


def _csrf_checked(route: Any) -> bool:
    for mw in route.middleware:
        if isinstance(mw, Csrf):
            config = mw.config
            if route.method not in config.safe_methods and not (
                config.exempt_paths and any_path_matches(config.exempt_paths, route.path)
            ):
                return True
    return False


def _rate_limited(route: Any) -> bool:
    for mw in route.middleware:
        if isinstance(mw, RateLimit):
            exempt = mw.config.exempt_paths
            if not (exempt and any_path_matches(exempt, route.path)):
                return True
    return False
