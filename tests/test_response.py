"""Response factories and handler return values (SPEC §2.3)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Response


@dataclasses.dataclass
class Point:
    x: int
    y: int


def _serve(value):
    app = App()
    app.get("/")(lambda request: value() if callable(value) else value)
    return app.test_client().get("/")


class FactoryTests(SynchronousTestCase):
    def test_plain_constructor_content_types(self) -> None:
        """§2.3 r1: str body → text/plain utf-8; non-empty bytes → octet-stream; explicit wins."""
        self.assertEqual(Response("hi").content_type, "text/plain; charset=utf-8")
        self.assertEqual(Response(b"\x00").content_type, "application/octet-stream")
        self.assertIsNone(Response(b"").content_type)
        self.assertEqual(Response(b"x", content_type="image/png").content_type, "image/png")

    def test_factories(self) -> None:
        """§2.3 r1: json/text/html/xml/binary content types."""
        self.assertEqual(Response.json({"a": 1}).content_type, "application/json")
        self.assertEqual(Response.text("t").content_type, "text/plain; charset=utf-8")
        self.assertEqual(Response.html("<p>").content_type, "text/html; charset=utf-8")
        self.assertEqual(Response.xml("<a/>").content_type, "application/xml; charset=utf-8")
        self.assertEqual(Response.binary(b"\x01").content_type, "application/octet-stream")
        self.assertEqual(Response.binary(b"\x01", "image/gif", 201).status, 201)

    def test_json_encoding(self) -> None:
        """§2.3 r2: UTF-8 (not ASCII-escaped); datetime/date ISO, UUID/Decimal str, set/tuple arrays, dataclasses."""
        u = uuid.UUID("12345678-1234-5678-1234-567812345678")
        body = Response.json(
            {
                "s": "é☃",
                "dt": datetime.datetime(2025, 8, 1, 12, 30),
                "d": datetime.date(2025, 8, 1),
                "u": u,
                "dec": decimal.Decimal("1.10"),
                "t": (1, 2),
                "set": {3},
                "p": Point(1, 2),
            }
        ).body
        self.assertIn("é☃".encode(), body)
        import json

        self.assertEqual(
            json.loads(body),
            {
                "s": "é☃",
                "dt": "2025-08-01T12:30:00",
                "d": "2025-08-01",
                "u": str(u),
                "dec": "1.10",
                "t": [1, 2],
                "set": [3],
                "p": {"x": 1, "y": 2},
            },
        )

    def test_redirects(self) -> None:
        """§2.3 r3: redirect sets Location; permanent → 301; other statuses → ValueError."""
        r = Response.redirect("/login")
        self.assertEqual((r.status, r.headers.get("location")), (302, "/login"))
        self.assertEqual(Response.redirect("/x", permanent=True).status, 301)
        for code in (301, 302, 303, 307, 308):
            self.assertEqual(Response.redirect("/x", status=code).status, code)
        with self.assertRaises(ValueError):
            Response.redirect("/x", status=200)

    def test_no_content_and_created(self) -> None:
        """§2.3 r3: no_content() → 204 without body/type; created → 201 JSON + Location."""
        r = Response.no_content()
        self.assertEqual((r.status, r.body, r.content_type), (204, b"", None))
        c = Response.created({"id": 1}, location="/items/1")
        self.assertEqual((c.status, c.body, c.headers.get("location")), (201, b'{"id":1}', "/items/1"))
        self.assertEqual(Response.created().body, b"")

    def test_xml(self) -> None:
        """§2.3 r4: xml(str) verbatim; xml(dict) nested and escaped under root_name."""
        self.assertEqual(Response.xml("<a>1</a>").body, b"<a>1</a>")
        body = Response.xml({"user": {"name": "a<b", "tags": ["x", "y"]}}, root_name="doc").body
        self.assertEqual(body, b"<doc><user><name>a&lt;b</name><tags><item>x</item><item>y</item></tags></user></doc>")

    def test_header_helpers(self) -> None:
        """§2.3 r6: set_header replaces, add_header appends, delete_header removes."""
        r = Response("x")
        r.set_header("X-A", "1").set_header("x-a", "2").add_header("X-B", "1").add_header("X-B", "2")
        self.assertEqual(r.headers.get_all("x-a"), ["2"])
        self.assertEqual(r.headers.get_all("x-b"), ["1", "2"])
        r.delete_header("X-B")
        self.assertNotIn("x-b", r.headers)
        self.assertEqual(r.status_code, 200)

    def test_cookies(self) -> None:
        """§2.3 r6: one Set-Cookie per cookie; delete_cookie sends empty value, Max-Age=0, 1970 Expires."""
        r = Response("x")
        r.set_cookie("a", "1", max_age=60, secure=True, httponly=True, samesite="lax")
        r.set_cookie("b", "2", http_only=True, same_site="Strict", domain="example.com", path="/app")
        r.delete_cookie("c")
        cookies = r.headers.get_all("set-cookie")
        self.assertEqual(len(cookies), 3)
        self.assertTrue(cookies[0].startswith("a=1; Path=/; Max-Age=60; Expires="))
        self.assertTrue(cookies[0].endswith("; Secure; HttpOnly; SameSite=Lax"))
        self.assertEqual(cookies[1], "b=2; Path=/app; Domain=example.com; HttpOnly; SameSite=Strict")
        self.assertEqual(cookies[2], "c=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        with self.assertRaises(ValueError):
            r.set_cookie("x", "a;b")


class ReturnValueTests(SynchronousTestCase):
    def test_conversions(self) -> None:
        """§2.3 r7: Response, dict/list → JSON, str → text, bytes → octet-stream, None → 204."""
        cases = [
            ({"a": 1}, 200, "application/json", b'{"a":1}'),
            ([1, 2], 200, "application/json", b"[1,2]"),
            ("hi", 200, "text/plain; charset=utf-8", b"hi"),
            (b"\x01", 200, "application/octet-stream", b"\x01"),
            (None, 204, None, b""),
            (Response.text("r", status=202), 202, "text/plain; charset=utf-8", b"r"),
        ]
        for value, status, ctype, body in cases:
            response = _serve(lambda v=value: v)
            self.assertEqual((response.status_code, response.headers.get("content-type"), response.content), (status, ctype, body), value)

    def test_tuples(self) -> None:
        """§2.3 r7: (body, status) and (body, status, headers)."""
        response = _serve(lambda: ({"created": True}, 201))
        self.assertEqual((response.status_code, response.json()), (201, {"created": True}))
        response = _serve(lambda: ("teapot", 418, {"X-Tea": "yes"}))
        self.assertEqual((response.status_code, response.text, response.headers.get("x-tea")), (418, "teapot", "yes"))

    def test_unsupported_is_500(self) -> None:
        """§2.3 r7: other types or non-serialisable JSON → 500."""
        self.assertEqual(_serve(lambda: object()).status_code, 500)
        self.assertEqual(_serve(lambda: {"x": object()}).status_code, 500)
        self.assertEqual(_serve(lambda: 42).status_code, 500)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 3)
