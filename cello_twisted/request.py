"""The Request wrapper: a str view of Twisted's request, computed lazily and cached."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

from . import _json
from ._headers import Headers
from .errors import BadRequestError, HTTPError

if TYPE_CHECKING:
    from collections.abc import Callable

    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.server import Request as TwistedRequest

    from .forms import FormData, UploadedFile
    from .server._threads import Threads


class AppView(Protocol):
    """What a request (and code holding one) may use of its App; App provides it.

    Declared here, not by importing App: app.py sits at the top of the package and
    nothing below it imports it.
    """

    trusted_proxies: TrustedProxies
    max_form_fields: int
    state: SimpleNamespace
    env: str
    debug: bool

    @property
    def clock(self) -> IReactorTime: ...

    @property
    def threads(self) -> Threads: ...

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]: ...

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]: ...


class MatchedRoute(Protocol):
    """The route a request matched, as handlers and middleware see it."""

    path: str
    method: str
    param_names: list[str]

    @property
    def name(self) -> str | None: ...

    @property
    def feature_path(self) -> bool:
        """Whether an ``enable_*`` feature (OpenAPI, docs, ...) added this route."""
        ...


class Context(dict):  # type: ignore[type-arg]
    """Per-request storage for middleware and handlers (a dict with helpers)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def has(self, key: str) -> bool:
        return key in self

    def delete(self, key: str) -> None:
        self.pop(key, None)


class QueryParams:
    """Decoded query string: ``get`` returns the first value, ``get_all`` every value."""

    __slots__ = ("_pairs", "_first")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for key, value in pairs:
            first.setdefault(key, value)
        self._first = first

    def get(self, key: str, default: Any = None) -> Any:
        return self._first.get(key, default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def keys(self) -> list[str]:
        return list(self._first)

    def items(self) -> list[tuple[str, str]]:
        return list(self._first.items())

    def to_dict(self) -> dict[str, str]:
        return dict(self._first)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"QueryParams({self._pairs!r})"


def _charset(content_type: str | None) -> str:
    if content_type:
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
    return "utf-8"


class Request:
    """What a handler receives. ``raw`` is the underlying Twisted request."""

    # Defaults live on the class so that building a Request sets only five attributes.
    route: MatchedRoute | None = None
    params: Mapping[str, str] = MappingProxyType({})
    gone = False  # set when the client disconnected before the response
    # The request ID as sent in the response header, when app.enable_request_id() is on
    # (SPEC_OPERATIONS §5); ``id`` is its text, decoded when read (most requests never read it).
    id_bytes: bytes | None = None
    # Who refused the request, for metrics: "jwt", "guard", "csrf" or "rate_limit" (set on refusal only).
    refused_by: str | None = None
    timed_out: Exception | None = None  # the 503 error once the handler timeout expired
    # JwtAuth's outcome, read by jwt_claims/jwt_token and the 401 body: (claims, or a callable
    # raising the 401; the token; the realm). An attribute, not a state entry: it is set on
    # every authenticated request.
    jwt_outcome: tuple[Any, str | None, str] | None = None
    _headers: Headers | None = None
    _query: QueryParams | None = None
    _body: bytes | None = None
    _json: Any = None
    _json_done = False
    _form: FormData | Exception | None = None
    _context: Context | None = None
    _cookies: dict[str, str] | None = None
    _state: dict[str, Any] | None = None
    _client_ip: str | None = None
    _validated: Any = None
    _has_validated = False

    def __init__(self, raw: TwistedRequest, app: AppView, method: str, path: str, root_path: str = "") -> None:
        self.raw = raw
        self.app = app
        self.method = method
        self.path = path
        self.root_path = root_path

    @property
    def id(self) -> str | None:
        """The request ID (SPEC_OPERATIONS §5), or None without ``app.enable_request_id()``."""
        raw = self.id_bytes
        return None if raw is None else raw.decode("ascii")

    @id.setter
    def id(self, value: str | None) -> None:
        self.id_bytes = None if value is None else value.encode("ascii")

    # -- URL ---------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.raw.isSecure() else "http"

    @property
    def host(self) -> str:
        return self.headers.get("host") or ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.raw.uri.decode('latin-1')}"

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            uri: bytes = self.raw.uri
            _, sep, qs = uri.partition(b"?")
            if not sep or not qs:
                self._query = QueryParams([])
            else:
                try:
                    pairs = parse_qsl(
                        qs.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
                    )
                except (UnicodeDecodeError, ValueError):
                    raise BadRequestError("Query string is not valid UTF-8") from None
                self._query = QueryParams(pairs)
        return self._query

    query_params = query

    def get_query_param(self, name: str, default: Any = None) -> Any:
        return self.query.get(name, default)

    # -- headers -----------------------------------------------------------

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            headers = Headers()
            for name, values in self.raw.requestHeaders.getAllRawHeaders():
                key = name.decode("latin-1")
                for value in values:
                    headers.add(key, value.decode("latin-1"))
            self._headers = headers
        return self._headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = first_cookies(self.raw.requestHeaders.getRawHeaders(b"cookie"))
        return self._cookies

    @property
    def content_type(self) -> str | None:
        value = self.raw.requestHeaders.getRawHeaders(b"content-type")
        return value[0].decode("latin-1") if value else None

    @property
    def content_length(self) -> int | None:
        value = self.raw.requestHeaders.getRawHeaders(b"content-length")
        try:
            return int(value[0]) if value else None
        except ValueError:
            return None

    def _mime(self) -> str:
        ct = self.content_type
        return ct.split(";", 1)[0].strip().lower() if ct else ""

    def is_json(self) -> bool:
        mime = self._mime()
        return mime == "application/json" or mime.endswith("+json")

    def is_form(self) -> bool:
        return self._mime() == "application/x-www-form-urlencoded"

    def is_multipart(self) -> bool:
        return self._mime().startswith("multipart/form-data")

    # -- body --------------------------------------------------------------

    def body(self) -> bytes:
        if self._body is None:
            content = self.raw.content
            if content is None:
                self._body = b""
            else:
                content.seek(0)
                self._body = content.read()
        return self._body

    def text(self) -> str:
        try:
            return self.body().decode(_charset(self.content_type))
        except (UnicodeDecodeError, LookupError):
            raise BadRequestError("Request body is not valid text in its declared charset") from None

    def json(self) -> Any:
        if not self._json_done:
            body = self.body()
            if not body.strip():
                raise BadRequestError("Request body is empty; expected JSON")
            try:
                self._json = _json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequestError(f"Invalid JSON body: {exc}") from None
            self._json_done = True
        return self._json

    def form(self) -> FormData:
        form = self._form
        if form is None:
            from .forms import parse_form

            form = self._form = parse_form(self)
        elif isinstance(form, Exception):  # a prefetched parse that failed
            raise form
        return form

    def cache_form(self, form: FormData | Exception) -> None:
        """Keep a form parsed ahead of the handler (or the error its parse raised)."""
        self._form = form

    def files(self) -> list[UploadedFile]:
        files: list[UploadedFile] = self.form().all_files()
        return files

    async def body_async(self) -> bytes:
        return self.body()

    async def text_async(self) -> str:
        return self.text()

    async def json_async(self) -> Any:
        return self.json()

    @property
    def validated(self) -> Any:
        """The decoded, validated body of a route declared with ``body=`` (SPEC_OPERATIONS §9 r5)."""
        if not self._has_validated:
            raise RuntimeError("request.validated needs a route declared with body=<type>")
        return self._validated

    @validated.setter
    def validated(self, value: Any) -> None:
        self._validated = value
        self._has_validated = True

    # -- per-request state -------------------------------------------------

    @property
    def context(self) -> Context:
        if self._context is None:
            self._context = Context()
        return self._context

    @property
    def state(self) -> dict[str, Any]:
        """Private per-request state for framework middleware."""
        if self._state is None:
            self._state = {}
        return self._state

    @property
    def session(self) -> Any:
        session = self._context.get("session") if self._context is not None else None
        if session is None:
            raise RuntimeError("request.session needs sessions: call app.enable_sessions(SessionConfig(...))")
        return session

    @property
    def jwt_claims(self) -> Any:
        # JwtAuth's outcome: (claims, or a callable raising the 401; token; realm).
        outcome = self.jwt_outcome
        if outcome is None:
            raise RuntimeError("request.jwt_claims needs JWT middleware: app.enable_jwt(...) or app.use(JwtAuth(...))")
        claims = outcome[0]
        if type(claims) is dict:
            return claims
        try:
            return claims()
        except HTTPError:
            self.refused_by = "jwt"  # no valid token: a JWT 401 (optional mode)
            raise

    @property
    def jwt_token(self) -> str | None:
        outcome = self.jwt_outcome
        return outcome[1] if outcome is not None else None

    @property
    def csrf_token(self) -> str:
        getter = self._state.get("csrf_token") if self._state else None
        if getter is None:
            raise RuntimeError("request.csrf_token needs CSRF protection: call app.enable_csrf(...)")
        token: str = getter()
        return token

    # -- client ------------------------------------------------------------

    @property
    def client_ip(self) -> str:
        ip = self._client_ip
        if ip is None:
            proxies = self.app.trusted_proxies
            if proxies.enabled:
                ip = proxies.client_ip(self)
            else:  # no trusted proxies: the TCP peer, without further checks (hot path)
                ip = getattr(self.raw.getClientAddress(), "host", None) or "unknown"
            self._client_ip = ip
        return ip

    remote_addr = client_ip

    def peer_ip(self) -> str:
        """The TCP peer's address, ignoring proxy headers."""
        addr = self.raw.getClientAddress()
        return getattr(addr, "host", None) or "unknown"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


def first_cookies(lines: Sequence[bytes] | None) -> dict[str, str]:
    """Cookie name -> value where the first occurrence wins (SPEC_OPERATIONS §11 r2).

    Twisted's ``received_cookies`` keeps the last duplicate; browsers send the most
    specific (and oldest) cookie first (RFC 6265 §5.4), so the first one is the real one.
    Same tokenising as Twisted's ``parseCookies``: ``;``-separated ``name=value`` pairs.
    """
    cookies: dict[str, str] = {}
    if lines:
        for line in lines:
            for pair in line.split(b";"):
                name, sep, value = pair.lstrip().partition(b"=")
                if sep:
                    cookies.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return cookies


def valid_ip(text: str) -> str | None:
    """``text`` as a normalised IPv4/IPv6 address, or None when it is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class TrustedProxies:
    """Decides which peers may set ``X-Forwarded-For`` / ``X-Real-IP`` (SPEC_OPERATIONS §11 r1).

    ``X-Forwarded-For`` is walked right to left (the right-most entry was added by the
    nearest proxy), skipping trusted proxies; the first untrusted valid address is the
    client. An invalid entry stops the walk at the last trusted hop, so a client can
    never pick its own address by prepending entries.
    """

    def __init__(self, proxies: str | Iterable[str] | None) -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        self.any = False
        self.networks: list[IPv4Network | IPv6Network] = []
        for item in proxies or ():
            if item == "*":
                self.any = True
            else:
                self.networks.append(ipaddress.ip_network(item, strict=False))
        self.enabled = self.any or bool(self.networks)

    def __bool__(self) -> bool:
        return self.enabled

    def trusts(self, ip: str) -> bool:
        if self.any:  # every peer, a UNIX-socket proxy ("unknown") included
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return self._trusts_address(addr)

    def _trusts_address(self, addr: IPv4Address | IPv6Address) -> bool:
        if self.any:
            return True
        mapped = addr.ipv4_mapped if isinstance(addr, IPv6Address) else None  # ::ffff:10.0.0.1, dual stack
        return any(addr in net or (mapped is not None and mapped in net) for net in self.networks)

    def client_ip(self, request: Request) -> str:
        peer = request.peer_ip()
        if not self.enabled or not self.trusts(peer):
            return peer
        headers = request.raw.requestHeaders
        lines = headers.getRawHeaders(b"x-forwarded-for")
        if lines:
            entries = [e.strip() for line in lines for e in line.decode("latin-1").split(",")]
            return self.walk([e for e in entries if e], valid_ip(peer) or peer)
        real = headers.getRawHeaders(b"x-real-ip")
        if real:
            ip = valid_ip(real[0].decode("latin-1").strip())
            if ip is not None:
                return ip
        return peer

    def walk(self, entries: list[str], peer: str) -> str:
        """The client address from ``X-Forwarded-For`` entries (left to right) sent by ``peer``."""
        last_trusted = peer
        for entry in reversed(entries):
            try:
                addr = ipaddress.ip_address(entry)
            except ValueError:
                return last_trusted  # an invalid entry: nothing left of it can be believed
            if not self._trusts_address(addr):
                return str(addr)
            last_trusted = str(addr)
        return last_trusted  # every hop trusted: the left-most one
