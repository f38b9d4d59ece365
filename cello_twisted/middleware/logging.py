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


class RequestLogging:
    """Logs ``[YYYY-MM-DD HH:MM:SS] METHOD PATH → STATUS (N.Nms)`` per request.

    The event carries ``method, path, status, duration_ms, client_ip`` so log
    observers (JSON under ``twist``) get structured fields. Colours are used when
    ``colors`` is True, or when None and stderr is a TTY in debug mode.
    """

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, exclude_paths: Sequence[str] = ("/health", "/metrics", "/favicon.ico"), colors: bool | None = None) -> None:
        self.exclude_paths = tuple(exclude_paths)
        self.colors = colors
        self._stamp_second = -1
        self._stamp = ""

    def _use_colors(self, request: Request) -> bool:
        if self.colors is not None:
            return self.colors
        return bool(request.app.debug) and sys.stderr.isatty()

    def _timestamp(self) -> str:
        now = int(time.time())
        if now != self._stamp_second:  # formatted once per second, not per request
            self._stamp_second = now
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        return self._stamp

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if self.exclude_paths and any_path_matches(self.exclude_paths, request.path):
            return call_next(request)
        started = time.perf_counter()

        def log(response: Response) -> Response:
            duration_ms = (time.perf_counter() - started) * 1000.0
            status = response.status
            shown = str(status)
            if self._use_colors(request):
                shown = f"{_COLORS.get(status // 100, '')}{status}{_RESET}"
            _log.info(
                "[{timestamp}] {method} {path} \u2192 {shown} ({duration_ms:.1f}ms)",
                timestamp=self._timestamp(),
                method=request.method,
                path=request.path,
                status=status,
                shown=shown,
                duration_ms=round(duration_ms, 3),
                client_ip=request.client_ip,
            )
            return response

        return then(call_next(request), log)
