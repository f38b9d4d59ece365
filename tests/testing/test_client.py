"""The in-memory test client (SPEC §2.23, plain HTTP parts)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Response
from cello_twisted.testing import TestClient


def _app():
    app = App()

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def echo(request):
        return {
            "method": request.method,
            "query": request.query.to_dict(),
            "ctype": request.content_type,
            "body": request.body().decode("latin-1"),
            "cookies": request.cookies,
            "x": request.headers.get("x-default"),
        }

    @app.get("/set")
    def set_cookie(request):
        r = Response.text("set")
        r.set_cookie("a", "1")
        r.set_cookie("scoped", "2", path="/admin")
        return r

    @app.get("/clear")
    def clear(request):
        return Response.text("cleared").delete_cookie("a")

    @app.get("/admin/page")
    def admin(request):
        return request.cookies

    @app.get("/redirect")
    def redirect(request):
        return Response.redirect("/echo")

    return app


class TestClientTests(SynchronousTestCase):
    def test_methods_and_encodings(self) -> None:
        """§2.23 r3: json= → JSON + Content-Type; data dict → urlencoded; str/bytes raw; params → query."""
        client = _app().test_client(headers={"X-Default": "d"})
        body = client.post("/echo", json={"a": 1}, params={"q": "1"}).json()
        self.assertEqual((body["ctype"], body["body"], body["query"], body["x"]), ("application/json", '{"a":1}', {"q": "1"}, "d"))
        body = client.put("/echo", data={"a": "1", "b": "x y"}).json()
        self.assertEqual((body["ctype"], body["body"]), ("application/x-www-form-urlencoded", "a=1&b=x+y"))
        self.assertEqual(client.patch("/echo", data="raw").json()["body"], "raw")
        self.assertEqual(client.delete("/echo", data=b"\x01").json()["body"], "\x01")

    def test_multipart_files(self) -> None:
        """§2.23 r3: files={"f": (filename, bytes, content_type)} (+ data fields) → multipart."""
        body = _app().test_client().post("/echo", files={"f": ("a.txt", b"hello", "text/plain")}, data={"k": "v"}).json()
        self.assertTrue(body["ctype"].startswith("multipart/form-data; boundary="))
        self.assertIn('filename="a.txt"', body["body"])
        self.assertIn("hello", body["body"])
        self.assertIn('name="k"', body["body"])

    def test_cookie_jar(self) -> None:
        """§2.23 r4: the jar stores cookies, honours Path, drops Max-Age=0, resends; per-call cookies added."""
        client = _app().test_client()
        response = client.get("/set")
        self.assertEqual(response.cookies, {"a": "1", "scoped": "2"})
        self.assertEqual(client.get("/echo").json()["cookies"], {"a": "1"})
        self.assertEqual(client.get("/admin/page").json(), {"a": "1", "scoped": "2"})
        self.assertEqual(client.get("/echo", cookies={"extra": "x"}).json()["cookies"], {"a": "1", "extra": "x"})
        client.get("/clear")
        self.assertEqual(client.get("/echo").json()["cookies"], {})
        client.cookies.clear()
        self.assertEqual(client.get("/admin/page").json(), {})

    def test_redirects_not_followed(self) -> None:
        """§2.23 r5: redirects are not followed."""
        response = _app().test_client().get("/redirect")
        self.assertEqual((response.status_code, response.headers.get("location")), (302, "/echo"))

    def test_headers_case_insensitive(self) -> None:
        """§2.23: TestResponse.headers is case-insensitive with get and get_all."""
        response = _app().test_client().get("/set")
        self.assertEqual(response.headers.get("CONTENT-TYPE"), "text/plain; charset=utf-8")
        self.assertEqual(len(response.headers.get_all("Set-Cookie")), 2)

    def test_app_test_client_is_test_client(self) -> None:
        """§2.23: app.test_client(**kw) builds a cello_twisted.testing.TestClient."""
        client = _app().test_client(client_ip="10.9.8.7")
        self.assertIsInstance(client, TestClient)
        self.assertEqual(client.client_ip, "10.9.8.7")
