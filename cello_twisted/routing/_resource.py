"""AppResource: the twisted.web leaf that resolves a route and runs its chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..forms import prefetch_form

if TYPE_CHECKING:
    from twisted.web.server import Request as TwistedRequest

    from ..request import Request
    from ..wire._writer import Body
    from ._compile import Pipeline, RoutedApp
    from ._router import PathEntry

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH", b"DELETE"))


class AppResource(Resource):
    """Routes everything below its mount point; ``request.root_path`` is the mount prefix."""

    isLeaf = True

    def __init__(self, app: RoutedApp) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # typing note: Resource.__init__ is unannotated
        self.app = app

    def render(self, twreq: TwistedRequest) -> Body:
        app = self.app
        pipeline = app.pipeline or app.compile()
        method = _METHODS.get(twreq.method) or twreq.method.decode("latin-1")
        prepath = twreq.prepath
        if not prepath:
            raw_path: bytes = twreq.path
            # Fast path: a literal route requested with a plain ASCII path at the root.
            hit = pipeline.raw_static.get(raw_path)
            if hit is not None:
                return self._dispatch(pipeline.new_request(twreq, app, method, hit[1]), pipeline, hit[0], ())
            if b"%" not in raw_path:
                # Nothing to percent-decode: the decoded path is the raw one, decoded once.
                try:
                    path = raw_path.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    segments = path[1:].split("/")
                    match = pipeline.router.match([s for s in segments if s] if "" in segments else segments)
                    request = pipeline.new_request(twreq, app, method, path)
                    if match is None:
                        return self._dispatch(request, pipeline, None, ())
                    return self._dispatch(request, pipeline, match[0], match[1])
        root_path = ("/" + "/".join(p.decode("utf-8", "replace") for p in prepath)) if prepath else ""
        postpath: list[bytes] = twreq.postpath  # type: ignore[assignment]  # typing note: Optional in Twisted's stubs, always set by Site
        try:
            decoded = [s.decode("utf-8") for s in postpath]
        except UnicodeDecodeError:
            path = "/" + "/".join(s.decode("utf-8", "replace") for s in postpath)
            request = pipeline.new_request(twreq, app, method, path, root_path)
            return pipeline.write(request, pipeline.bad_path(request))
        request = pipeline.new_request(twreq, app, method, "/" + "/".join(decoded), root_path)
        match = pipeline.router.match([s for s in decoded if s] if "" in decoded else decoded)
        if match is None:
            return self._dispatch(request, pipeline, None, ())
        return self._dispatch(request, pipeline, match[0], match[1])

    def _dispatch(
        self, request: Request, pipeline: Pipeline, entry: PathEntry | None, values: Sequence[str]
    ) -> Body:
        twreq = request.raw
        limit = self.app.max_body_size
        if limit is not None and not getattr(twreq, "body_limit_enforced", False) and _body_size(twreq) > limit:
            return pipeline.write(request, pipeline.too_large(request))
        if entry is None:
            return pipeline.write(request, pipeline.not_found(request))
        method = request.method
        route = entry.methods.get(method)
        if route is None:
            if entry.websocket is not None and method == "GET":
                route = entry.websocket
            elif method == "HEAD":
                route = entry.methods.get("GET")
            if route is None:
                chain = entry.options_chain if method == "OPTIONS" else entry.not_allowed_chain
                request.route = entry.owner
                return pipeline.write(request, chain(request))
        elif entry.websocket is not None and method == "GET" and _wants_upgrade(twreq):
            route = entry.websocket
        request.route = route
        if values:
            request.params = dict(zip(route.param_names, values, strict=False))
        if twreq.method in _BODY_METHODS:
            parsing = prefetch_form(request)
            if parsing is not None:  # a large urlencoded body: decoded in slices first
                chain = route.chain
                return pipeline.write(request, parsing.addCallback(lambda _: chain(request)))
        return pipeline.write(request, route.chain(request))

    def getChildWithDefault(self, path: bytes, request: Any) -> Any:  # pragma: no cover - leaf
        return self


def _body_size(twreq: TwistedRequest) -> int:
    content = twreq.content
    if content is None:
        return 0
    position = content.tell()
    size: int = content.seek(0, 2)
    content.seek(position)
    return size


def _wants_upgrade(twreq: TwistedRequest) -> bool:
    value = twreq.requestHeaders.getRawHeaders(b"upgrade")
    return value is not None and len(value) > 0 and value[0].lower() == b"websocket"


__all__ = ["AppResource", "NOT_DONE_YET"]
