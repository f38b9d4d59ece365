"""WebSocket upgrade: middleware, guards, 426/400, subprotocols, compression (SPEC §2.19 r1-r2)."""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Authenticated, Response, RoleGuard
from cello_twisted.testing import WebSocketRejected
from tests._support.realtime import raw_exchange, upgrade_request


def echo_app(**ws_options):
    app = App(clock=Clock())

    @app.websocket("/ws", **ws_options)
    async def echo(ws):
        async for msg in ws:
            await ws.send(msg.payload)

    return app


class HandshakeErrorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = echo_app()

    def test_get_without_upgrade_is_426(self) -> None:
        """§2.19 r2: GET without upgrade → 426 + Upgrade: websocket, standard error body."""
        status, headers, body = raw_exchange(self.app, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("upgrade"), "websocket")
        self.assertEqual(json.loads(body)["status"], 426)
        self.assertEqual(json.loads(body)["error"], "Upgrade Required")

    def test_test_client_get_is_426(self) -> None:
        """§2.19 r2 / §2.24 r4: the plain test client sees 426 too."""
        self.assertEqual(self.app.test_client().get("/ws").status_code, 426)

    def test_unsupported_version_is_426(self) -> None:
        """§2.19 r2: an unsupported version → 426 + Sec-WebSocket-Version: 13."""
        status, headers, _ = raw_exchange(self.app, upgrade_request(Sec_WebSocket_Version="8"))
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("sec-websocket-version"), "13")

    def test_missing_version_is_426(self) -> None:
        """§2.19 r2: no version at all is also unsupported."""
        status, headers, _ = raw_exchange(self.app, upgrade_request(Sec_WebSocket_Version=None))
        self.assertEqual((status, headers.get("sec-websocket-version")), (426, "13"))

    def test_malformed_key_is_400(self) -> None:
        """§2.19 r1 (RFC 6455 4.2.1): a missing or malformed Sec-WebSocket-Key → 400."""
        for key in (None, "short", "!!!!notbase64!!!!!!!!!!!"):
            status, _, body = raw_exchange(self.app, upgrade_request(Sec_WebSocket_Key=key))
            self.assertEqual(status, 400, key)
            self.assertEqual(json.loads(body)["status"], 400)

    def test_connection_without_upgrade_is_400(self) -> None:
        """§2.19 r1: Connection must include 'upgrade'."""
        status, _, _ = raw_exchange(self.app, upgrade_request(Connection="keep-alive"))
        self.assertEqual(status, 400)

    def test_valid_raw_upgrade_is_101(self) -> None:
        """§2.19 r1: a valid request switches protocols with the RFC accept key."""
        status, headers, _ = raw_exchange(self.app, upgrade_request())
        self.assertEqual(status, 101)
        self.assertEqual(headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_get_route_on_same_path_keeps_plain_get(self) -> None:
        """§2.19 r2: with an HTTP GET route on the path, plain GETs reach it; upgrades reach the socket."""

        @self.app.get("/ws")
        def page(request):
            return "page"

        client = self.app.test_client()
        self.assertEqual(client.get("/ws").text, "page")
        with client.websocket_connect("/ws") as ws:
            ws.send_text("x")
            self.assertEqual(ws.receive_text(), "x")

    def test_listed_as_websocket_route(self) -> None:
        """§2.1 r9: get_all_routes lists WebSocket routes with method WEBSOCKET."""
        self.assertIn(("/ws", "WEBSOCKET"), self.app.get_all_routes())


class ChainTests(SynchronousTestCase):
    def test_guard_401_is_plain_http(self) -> None:
        """§2.19 r1: a refusing guard answers the upgrade with plain HTTP (401)."""
        app = echo_app(guards=[Authenticated()])
        with self.assertRaises(WebSocketRejected) as caught:
            app.test_client().websocket_connect("/ws")
        self.assertEqual(caught.exception.status_code, 401)
        self.assertEqual(caught.exception.response.json()["status"], 401)

    def test_guard_403_and_pass(self) -> None:
        """§2.19 r1: 403 from a role guard; with the role the upgrade succeeds."""
        app = App(clock=Clock())

        @app.before_request
        def who(request):
            role = request.headers.get("x-role")
            if role:
                request.context["user"] = {"roles": [role]}

        @app.websocket("/admin", guards=[RoleGuard(["admin"])])
        def admin(ws):
            ws.send_text("welcome")

        client = app.test_client()
        with self.assertRaises(WebSocketRejected) as caught:
            client.websocket_connect("/admin", headers={"X-Role": "user"})
        self.assertEqual(caught.exception.status_code, 403)
        ws = client.websocket_connect("/admin", headers={"X-Role": "admin"})
        self.assertEqual(ws.receive_text(), "welcome")

    def test_app_guard_applies(self) -> None:
        """§2.1 r10: add_guard guards WebSocket routes too."""
        app = echo_app()
        app.add_guard(Authenticated())
        with self.assertRaises(WebSocketRejected) as caught:
            app.test_client().websocket_connect("/ws")
        self.assertEqual(caught.exception.status_code, 401)

    def test_middleware_short_circuit_429(self) -> None:
        """§2.19 r1: middleware may refuse the upgrade (e.g. 429); it is sent as plain HTTP."""
        app = echo_app()

        def limiter(request, call_next):
            return Response.json(
                {"error": "Too Many Requests", "status": 429},
                status=429,
                headers={"Retry-After": "3"},
            )

        app.use(limiter)
        with self.assertRaises(WebSocketRejected) as caught:
            app.test_client().websocket_connect("/ws")
        self.assertEqual(caught.exception.status_code, 429)
        self.assertEqual(caught.exception.response.headers.get("retry-after"), "3")

    def test_middleware_sees_upgrade_and_adds_headers(self) -> None:
        """§2.19 r1: middleware runs for the upgrade; headers it adds travel on the 101."""
        app = echo_app()
        seen = []

        @app.after_request
        def tag(request, response):
            seen.append((request.path, response.status))
            response.set_header("X-Trace", "abc")

        ws = app.test_client().websocket_connect("/ws")
        self.assertEqual(seen, [("/ws", 101)])
        self.assertEqual(ws.headers.get("x-trace"), "abc")

    def test_upgrade_with_compression_enabled(self) -> None:
        """§2.19 r1 / §2.8 r3 (seed 000 fix): gzip compression never breaks the upgrade."""
        app = echo_app()
        app.enable_compression(min_size=0)
        ws = app.test_client().websocket_connect("/ws", headers={"Accept-Encoding": "gzip"})
        ws.send_text("through gzip")
        self.assertEqual(ws.receive_text(), "through gzip")
        self.assertIsNone(ws.headers.get("content-encoding"))
        status, headers, _ = raw_exchange(app, upgrade_request(Accept_Encoding="gzip"))
        self.assertEqual(status, 101)
        self.assertNotIn("content-encoding", headers)


class SubprotocolTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app = App(clock=Clock())

        @self.app.websocket("/chat", subprotocols=["chat.v1", "chat.v2"])
        def chat(ws):
            ws.send_text(str(ws.subprotocol))

        self.client = self.app.test_client()

    def test_first_client_offered_match(self) -> None:
        """§2.19 r2: the first client-offered protocol the route supports is chosen."""
        ws = self.client.websocket_connect("/chat", subprotocols=["x", "chat.v2", "chat.v1"])
        self.assertEqual(ws.subprotocol, "chat.v2")
        self.assertEqual(ws.receive_text(), "chat.v2")

    def test_no_match(self) -> None:
        """§2.19 r2: no common protocol → none selected, connection still accepted."""
        ws = self.client.websocket_connect("/chat", subprotocols=["other"])
        self.assertIsNone(ws.subprotocol)
        self.assertEqual(ws.receive_text(), "None")


class DeflateTests(SynchronousTestCase):
    def test_permessage_deflate_negotiated(self) -> None:
        """§2.19 r1 (RFC 7692): permessage-deflate offered by the client is accepted."""
        app = echo_app()
        ws = app.test_client().websocket_connect("/ws")
        self.assertIn("permessage-deflate", ws.headers.get("sec-websocket-extensions") or "")
        big = "abc" * 10000
        ws.send_text(big)
        self.assertEqual(ws.receive_text(), big)
