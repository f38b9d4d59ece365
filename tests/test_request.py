"""Request API (SPEC §2.2)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, BadRequestError, HTTPError


def _app():
    app = App(trusted_proxies=["10.0.0.0/8"])

    @app.route("/echo/{name}", methods=["GET", "POST"])
    def echo(request):
        return {
            "method": request.method,
            "path": request.path,
            "root_path": request.root_path,
            "url": request.url,
            "scheme": request.scheme,
            "host": request.host,
            "params": dict(request.params),
            "q": request.query.get("q"),
            "q_all": request.query_params.get_all("q"),
            "q_missing": request.get_query_param("zz", "dflt"),
            "in": "q" in request.query,
            "keys": request.query.keys(),
            "h": request.headers.get("x-multi"),
            "h_all": request.headers.get_all("X-Multi"),
            "h_names": sorted(n for n in request.headers if n.startswith("x-")),
            "get_header": request.get_header("X-MISSING", "none"),
            "cookies": request.cookies,
            "content_type": request.content_type,
            "content_length": request.content_length,
            "is_json": request.is_json(),
            "is_form": request.is_form(),
            "is_multipart": request.is_multipart(),
            "client_ip": request.client_ip,
            "remote_addr": request.remote_addr,
            "route": request.route.path,
            "app_is_app": request.app is app,
            "raw_is_twisted": hasattr(request.raw, "requestHeaders"),
        }

    @app.post("/json")
    def json_body(request):
        return {"data": request.json(), "again": request.json() is request.json()}

    @app.post("/text")
    def text_body(request):
        return {"text": request.text(), "body": len(request.body())}

    @app.post("/async")
    async def async_body(request):
        return {"json": await request.json_async(), "text": await request.text_async(), "n": len(await request.body_async())}

    @app.get("/ctx")
    def ctx(request):
        request.context.set("a", 1)
        request.context["b"] = 2
        request.context.delete("b")
        return {"has_a": request.context.has("a"), "has_b": request.context.has("b"), "ctx": dict(request.context)}

    return app


class RequestTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = _app()
        self.client = self.app.test_client()

    def test_url_parts_query_headers(self) -> None:
        """§2.2: method, path, url, scheme, host, params, query, headers (case-insensitive, joined repeats)."""
        body = self.client.get(
            "/echo/bob?q=1&q=2&z=",
            headers={"X-Multi": "a", "Cookie": "sid=abc; theme=dark"},
        ).json()
        self.assertEqual(body["method"], "GET")
        self.assertEqual(body["path"], "/echo/bob")
        self.assertEqual(body["root_path"], "")
        self.assertEqual(body["url"], "http://localhost/echo/bob?q=1&q=2&z=")
        self.assertEqual(body["scheme"], "http")
        self.assertEqual(body["host"], "localhost")
        self.assertEqual(body["params"], {"name": "bob"})
        self.assertEqual((body["q"], body["q_all"], body["q_missing"], body["in"]), ("1", ["1", "2"], "dflt", True))
        self.assertEqual(body["keys"], ["q", "z"])
        self.assertEqual(body["h"], "a")
        self.assertEqual(body["get_header"], "none")
        self.assertEqual(body["cookies"], {"sid": "abc", "theme": "dark"})
        self.assertEqual(body["route"], "/echo/{name}")
        self.assertTrue(body["app_is_app"] and body["raw_is_twisted"])

    def test_repeated_headers_joined(self) -> None:
        """§2.2: headers.get joins repeated values with ", "; get_all lists them; names iterate lower-case."""
        from cello_twisted.testing import TestClient

        client = TestClient(self.app)
        method, url, headers, body = client.build_request("GET", "/echo/x")
        headers.addRawHeader(b"X-Multi", b"one")
        headers.addRawHeader(b"X-Multi", b"two")
        response = client.wait(client.agent.request(method, url, headers, None), "req")
        import json

        data = json.loads(client.wait(__import__("treq").content(response), "body"))
        self.assertEqual(data["h"], "one, two")
        self.assertEqual(data["h_all"], ["one", "two"])
        self.assertEqual(data["h_names"], ["x-multi"])

    def test_content_type_helpers(self) -> None:
        """§2.2: content_type, content_length, is_json (incl. +json), is_form, is_multipart."""
        body = self.client.post("/echo/x", data=b"{}", headers={"Content-Type": "application/vnd.api+json"}).json()
        self.assertEqual((body["content_type"], body["content_length"], body["is_json"]), ("application/vnd.api+json", 2, True))
        body = self.client.post("/echo/x", data={"a": "1"}).json()
        self.assertTrue(body["is_form"])
        body = self.client.post("/echo/x", files={"f": ("a.txt", b"hi", "text/plain")}).json()
        self.assertTrue(body["is_multipart"])
        body = self.client.get("/echo/x").json()
        self.assertEqual((body["content_type"], body["content_length"]), (None, None))

    def test_json_cached_and_independent_of_content_type(self) -> None:
        """§2.2 r1: json() parses regardless of Content-Type and is cached."""
        response = self.client.post("/json", data=b'{"a": [1, 2]}', headers={"Content-Type": "text/plain"})
        self.assertEqual(response.json(), {"data": {"a": [1, 2]}, "again": True})

    def test_bad_json_is_400(self) -> None:
        """§2.2 r1: empty body, invalid JSON or undecodable bytes → 400 BadRequestError."""
        for body in (b"", b"   ", b"{nope", b"\xff\xfe{"):
            response = self.client.post("/json", data=body)
            self.assertEqual(response.status_code, 400, body)
            self.assertEqual(response.json()["error"], "Bad Request")
            self.assertIn("detail", response.json())

    def test_bad_text_is_400(self) -> None:
        """§2.2 r1: text() on undecodable bytes → 400; charset comes from Content-Type."""
        self.assertEqual(self.client.post("/text", data=b"\xff").status_code, 400)
        ok = self.client.post("/text", data="é".encode("latin-1"), headers={"Content-Type": "text/plain; charset=latin-1"})
        self.assertEqual(ok.json(), {"text": "é", "body": 1})

    def test_async_twins(self) -> None:
        """§2.2: body_async/text_async/json_async are coroutine twins."""
        self.assertEqual(self.client.post("/async", json=[1]).json(), {"json": [1], "text": "[1]", "n": 3})

    def test_bad_request_error_types(self) -> None:
        """§2.2 r1: BadRequestError is an HTTPError and a ValueError."""
        self.assertTrue(issubclass(BadRequestError, HTTPError))
        self.assertTrue(issubclass(BadRequestError, ValueError))
        self.assertEqual(BadRequestError("x").status, 400)

    def test_context(self) -> None:
        """§2.2: context is a per-request dict with set/has/delete."""
        self.assertEqual(self.client.get("/ctx").json(), {"has_a": True, "has_b": False, "ctx": {"a": 1}})

    def test_client_ip_direct_peer(self) -> None:
        """§2.2 r2: client_ip is the TCP peer when the peer is not a trusted proxy."""
        from cello_twisted.testing import TestClient

        body = TestClient(self.app, client_ip="203.0.113.9").get("/echo/x", headers={"X-Forwarded-For": "1.2.3.4"}).json()
        self.assertEqual((body["client_ip"], body["remote_addr"]), ("203.0.113.9", "203.0.113.9"))

    def test_client_ip_trusted_proxy(self) -> None:
        """§2.2 r2: a trusted proxy's left-most X-Forwarded-For entry, else X-Real-IP."""
        from cello_twisted.testing import TestClient

        client = TestClient(self.app, client_ip="10.1.2.3")
        self.assertEqual(client.get("/echo/x", headers={"X-Forwarded-For": "1.2.3.4, 10.1.2.3"}).json()["client_ip"], "1.2.3.4")
        self.assertEqual(client.get("/echo/x", headers={"X-Real-IP": "5.6.7.8"}).json()["client_ip"], "5.6.7.8")
        self.assertEqual(client.get("/echo/x").json()["client_ip"], "10.1.2.3")

    def test_https_scheme(self) -> None:
        """§2.23 r5: https base_url → request.scheme == "https"."""
        from cello_twisted.testing import TestClient

        self.assertEqual(TestClient(self.app, base_url="https://example.test").get("/echo/x").json()["scheme"], "https")

    def test_bad_query_bytes(self) -> None:
        """Bad input: non-UTF-8 query bytes give a 400 JSON error when the query is read."""
        response = self.client.get("/echo/x?q=%FF")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["status"], 400)

    def test_bad_path_bytes(self) -> None:
        """Bad input: a non-UTF-8 path gives a 400 JSON error, and the app keeps serving."""
        response = self.client.get("/echo/%FF%FE")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["detail"], "Request path is not valid UTF-8")
        self.assertEqual(self.client.get("/echo/ok").status_code, 200)
