"""What the test client hands back: finished responses and the cookies they set."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from .. import _json
from .._headers import Headers

__all__ = ["TestResponse", "CookieJar"]


class TestResponse:
    """A finished response: status, headers, body and the cookies it set."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for header in self.headers.get_all("set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed:
                out[parsed[0]] = parsed[1].value
        return out

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code} {len(self.content)} bytes>"


def _parse_set_cookie(header: str) -> tuple[str, Any] | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    for name, morsel in jar.items():
        return name, morsel
    return None


class CookieJar:
    """Cookies set by responses: honours Path, Max-Age=0 and past Expires; ignores Secure/Domain."""

    def __init__(self, clock: Any = None) -> None:
        self._cookies: dict[str, tuple[str, str]] = {}  # name -> (value, path)

    def update_from(self, headers: Headers) -> None:
        import time
        from email.utils import parsedate_to_datetime

        for header in headers.get_all("set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed is None:
                continue
            name, morsel = parsed
            expired = morsel["max-age"] not in ("", None) and int(morsel["max-age"]) <= 0
            if not expired and morsel["expires"]:
                try:
                    expired = parsedate_to_datetime(morsel["expires"]).timestamp() <= time.time()
                except (TypeError, ValueError):
                    pass
            if expired:
                self._cookies.pop(name, None)
            else:
                self._cookies[name] = (morsel.value, morsel["path"] or "/")

    def for_path(self, path: str) -> dict[str, str]:
        out = {}
        for name, (value, cookie_path) in self._cookies.items():
            prefix = cookie_path.rstrip("/")
            if path == cookie_path or path.startswith(prefix + "/") or cookie_path == "/":
                out[name] = value
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        entry = self._cookies.get(name)
        return entry[0] if entry else default

    def set(self, name: str, value: str, path: str = "/") -> None:
        self._cookies[name] = (value, path)

    def clear(self) -> None:
        self._cookies.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._cookies

    def __getitem__(self, name: str) -> str:
        return self._cookies[name][0]

    def __len__(self) -> int:
        return len(self._cookies)

    def keys(self) -> list[str]:
        return list(self._cookies)
