"""RequestLogging: one access line per finished request, through twisted.logger (SPEC §2.9)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from twisted.logger import Logger

from ._chain import then
from ._util import any_path_matches

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..request import Request
    from ..response import Response

_log = Logger(namespace="cello_twisted.access")

_COLORS = {2: "\033[32m", 3: "\033[36m", 4: "\033[33m", 5: "\033[31m"}
_RESET = "\033[0m"


def _formats(colored: bool, with_id: bool) -> dict[int, str]:
    """The event's message format per status class (the time comes from the log observer)."""
    out = {}
    for cls in (1, 2, 3, 4, 5):
        status = f"{_COLORS.get(cls, '')}{{status}}{_RESET}" if colored and cls in _COLORS else "{status}"
        text = "{method} {path} \u2192 " + status + " ({duration_ms:.3f}ms) {client_ip}"
        out[cls] = text + " {request_id}" if with_id else text
    return out


class RequestLogging:
    """Logs ``METHOD PATH → STATUS (N.NNNms) CLIENT_IP [REQUEST_ID]`` per request.

    The event carries ``method, path, status, duration_ms, client_ip`` (and
    ``request_id`` when request IDs are on) so structured observers (JSON lines,
    ``app.run(log_format="json")``) get the fields. The log observer adds the time,
    once. Colours are used when ``colors`` is True, or when None and stderr is a TTY
    in debug mode.
    """

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, exclude_paths: Sequence[str] = ("/health", "/metrics", "/favicon.ico"), colors: bool | None = None) -> None:
        self.exclude_paths = tuple(exclude_paths)
        self.colors = colors
        self._formats = {(c, i): _formats(c, i) for c in (False, True) for i in (False, True)}

    def _use_colors(self, request: Request) -> bool:
        if self.colors is not None:
            return self.colors
        return bool(request.app.debug) and sys.stderr.isatty()

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if self.exclude_paths and any_path_matches(self.exclude_paths, request.path):
            return call_next(request)
        started = time.perf_counter()

        def log(response: Response) -> Response:
            duration_ms = (time.perf_counter() - started) * 1000.0
            status = response.status
            request_id = request.id
            formats = self._formats[self._use_colors(request), request_id is not None]
            fields = {
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round(duration_ms, 3),
                "client_ip": request.client_ip,
            }
            if request_id is not None:
                fields["request_id"] = request_id
            _log.info(formats.get(status // 100, formats[5]), **fields)
            return response

        return then(call_next(request), log)
