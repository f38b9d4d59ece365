"""client_ip behind proxies: X-Forwarded-For walked right to left (SPEC_OPERATIONS §11 r1)."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from cello_twisted import App, RateLimitConfig
from cello_twisted.request import Request


def make_app(**kwargs: Any) -> App:
    """An App on a task.Clock, so time-based behaviour is deterministic."""
    return App(clock=Clock(), **kwargs)


def _ip_app(proxies: object) -> App:
    app = make_app(trusted_proxies=proxies)

    @app.get("/ip")
    def ip(request: Request) -> dict:
        return {"ip": request.client_ip}

    return app


def _ip(app: App, peer: str, **headers: str) -> str:
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    return app.test_client(client_ip=peer).get("/ip", headers=names).json()["ip"]


class ForwardedForTests(SynchronousTestCase):
    def test_one_proxy_gives_the_address_it_appended(self) -> None:
        """Behind one trusted nginx, client_ip is the entry nginx appended (the right-most)."""
        app = _ip_app(["10.0.0.1"])
        self.assertEqual(_ip(app, "10.0.0.1", X_Forwarded_For="203.0.113.7"), "203.0.113.7")

    def test_spoofed_left_most_entry_is_ignored(self) -> None:
        """A client prepending its own X-Forwarded-For cannot choose its client_ip."""
        app = _ip_app(["10.0.0.1"])
        self.assertEqual(_ip(app, "10.0.0.1", X_Forwarded_For="1.2.3.4, 203.0.113.7"), "203.0.113.7")
        self.assertEqual(_ip(app, "10.0.0.1", X_Forwarded_For="' OR 1=1 --, 203.0.113.7"), "203.0.113.7")

    def test_two_proxies_are_both_skipped(self) -> None:
        """A cloud load balancer plus nginx (both trusted): the first untrusted entry from the right wins."""
        app = _ip_app(["10.0.0.0/8"])
        self.assertEqual(
            _ip(app, "10.0.0.2", X_Forwarded_For="6.6.6.6, 198.51.100.9, 10.1.2.3"), "198.51.100.9"
        )

    def test_invalid_entry_stops_the_walk_at_the_last_trusted_hop(self) -> None:
        """An entry that is not an IP address ends the walk: client_ip is the trusted hop to its right."""
        app = _ip_app(["10.0.0.0/8"])
        self.assertEqual(_ip(app, "10.0.0.2", X_Forwarded_For="1.1.1.1, ' OR 1=1 --, 10.1.2.3"), "10.1.2.3")
        self.assertEqual(_ip(app, "10.0.0.2", X_Forwarded_For="1.1.1.1, not-an-ip"), "10.0.0.2")

    def test_every_entry_trusted_gives_the_left_most(self) -> None:
        """When every entry is a trusted proxy, the left-most one is the client."""
        app = _ip_app(["10.0.0.0/8"])
        self.assertEqual(_ip(app, "10.0.0.2", X_Forwarded_For="10.9.9.9, 10.1.2.3"), "10.9.9.9")

    def test_ipv6_entries_are_normalised(self) -> None:
        """IPv6 peers and entries work; the address is given in its normalised text form."""
        app = _ip_app(["fd00::/8"])
        self.assertEqual(
            _ip(app, "fd00::1", X_Forwarded_For="2001:DB8:0:0:0:0:0:0001, fd00::2"), "2001:db8::1"
        )
        self.assertEqual(_ip(app, "fd00::1", X_Forwarded_For="2001:db8::bad::1"), "fd00::1")

    def test_star_trusts_every_hop(self) -> None:
        """trusted_proxies="*": the left-most valid entry wins, whatever the peer."""
        app = _ip_app("*")
        self.assertEqual(_ip(app, "192.0.2.1", X_Forwarded_For="198.51.100.1, 203.0.113.5"), "198.51.100.1")
        self.assertEqual(_ip(app, "192.0.2.1", X_Forwarded_For="junk, 203.0.113.5"), "203.0.113.5")

    def test_untrusted_peer_headers_are_ignored(self) -> None:
        """A peer that is not a trusted proxy is the client, whatever it sends."""
        app = _ip_app(["10.0.0.1"])
        self.assertEqual(_ip(app, "192.0.2.50", X_Forwarded_For="1.2.3.4", X_Real_IP="5.6.7.8"), "192.0.2.50")

    def test_x_real_ip_only_without_forwarded_for_and_only_if_valid(self) -> None:
        """X-Real-IP counts only without X-Forwarded-For, and only when it is a valid address."""
        app = _ip_app(["10.0.0.1"])
        self.assertEqual(_ip(app, "10.0.0.1", X_Real_IP="203.0.113.9"), "203.0.113.9")
        self.assertEqual(_ip(app, "10.0.0.1", X_Real_IP="evil"), "10.0.0.1")
        self.assertEqual(
            _ip(app, "10.0.0.1", X_Real_IP="203.0.113.9", X_Forwarded_For="198.51.100.4"), "198.51.100.4"
        )

    def test_repeated_header_lines_are_joined_in_order(self) -> None:
        """Two X-Forwarded-For lines read as one list, first line first."""
        app = make_app(trusted_proxies=["10.0.0.0/8"])
        for lines, expected in (
            ([b"1.1.1.1", b"198.51.100.2, 10.0.0.9"], "198.51.100.2"),
            ([b"198.51.100.2, 10.0.0.9", b"10.0.0.8"], "198.51.100.2"),
            ([b"10.0.0.7", b"203.0.113.1"], "203.0.113.1"),
        ):
            raw = DummyRequest([b"ip"])
            raw.client = IPv4Address("TCP", "10.0.0.1", 1234)
            raw.requestHeaders.setRawHeaders(b"x-forwarded-for", lines)
            self.assertEqual(Request(raw, app, "GET", "/ip").client_ip, expected, lines)

    def test_ipv4_mapped_peer_matches_ipv4_networks(self) -> None:
        """A dual-stack socket's ::ffff:10.0.0.1 peer is trusted by a 10.0.0.0/8 entry."""
        app = make_app(trusted_proxies=["10.0.0.0/8"])
        raw = DummyRequest([b"ip"])
        raw.client = IPv6Address("TCP", "::ffff:10.0.0.1", 1234)
        raw.requestHeaders.setRawHeaders(b"x-forwarded-for", [b"203.0.113.3"])
        self.assertEqual(Request(raw, app, "GET", "/ip").client_ip, "203.0.113.3")


    def test_star_trusts_a_unix_socket_proxy(self) -> None:
        """Behind nginx on a UNIX socket (no peer IP), "*" still reads X-Forwarded-For."""
        from twisted.internet.address import UNIXAddress

        raw = DummyRequest([b"ip"])
        raw.client = UNIXAddress(b"/run/app.sock")
        raw.requestHeaders.setRawHeaders(b"x-forwarded-for", [b"203.0.113.4"])
        self.assertEqual(Request(raw, make_app(trusted_proxies="*"), "GET", "/ip").client_ip, "203.0.113.4")


class RateLimitKeyTests(SynchronousTestCase):
    def test_limiter_keys_on_the_walked_client_ip(self) -> None:
        """Spoofed left-most entries do not give a client fresh rate-limit counters."""
        app = make_app(trusted_proxies=["10.0.0.1"])
        app.enable_rate_limit(RateLimitConfig(2, 60))
        app.get("/x")(lambda request: "x")
        proxy = app.test_client(client_ip="10.0.0.1")
        codes = [
            proxy.get("/x", headers={"X-Forwarded-For": f"9.9.9.{i}, 203.0.113.7"}).status_code
            for i in range(4)
        ]
        self.assertEqual(codes, [200, 200, 429, 429])
        other = proxy.get("/x", headers={"X-Forwarded-For": "203.0.113.8"})
        self.assertEqual(other.status_code, 200)  # a different real client has its own counter
