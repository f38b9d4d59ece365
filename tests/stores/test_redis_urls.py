"""Redis URLs for every topology, parsed once at start-up; bad ones are ValueErrors (SPEC §12 r4-r5)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import Broadcast
from cello_twisted.stores import RedisRateLimitStore
from cello_twisted.stores._redis_nodes import key_slot
from cello_twisted.stores._redis_url import parse_url, safe_url


class UrlTests(SynchronousTestCase):
    def test_topologies(self) -> None:
        """§12 r5: redis://, rediss://, unix://, redis+sentinel:// and redis+cluster:// forms."""
        single = parse_url("rediss://user:p%40ss@cache.example:6380/2?ssl_ca_certs=/etc/ca.pem")
        self.assertEqual(
            (single.kind, single.hosts, single.db, single.username, single.password, single.tls),
            ("single", (("cache.example", 6380),), 2, "user", "p@ss", True),
        )
        self.assertEqual((single.verify, single.ca_certs), (True, "/etc/ca.pem"))
        sentinel = parse_url("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3")
        self.assertEqual(sentinel.kind, "sentinel")
        self.assertEqual(
            sentinel.hosts, (("10.0.0.1", 26379), ("10.0.0.2", 6379), ("::1", 26380))
        )
        self.assertEqual((sentinel.service, sentinel.db, sentinel.password), ("mymaster", 3, "pw"))
        cluster = parse_url("redis+cluster://a:7000,b:7001")
        self.assertEqual((cluster.kind, cluster.hosts, cluster.db), ("cluster", (("a", 7000), ("b", 7001)), 0))
        unix = parse_url("unix:///run/redis.sock?db=4&password=x")
        self.assertEqual((unix.kind, unix.path, unix.db, unix.password), ("unix", "/run/redis.sock", 4, "x"))
        self.assertFalse(parse_url("rediss://h/0?ssl_cert_reqs=none").verify)

    def test_bad_urls_are_value_errors(self) -> None:
        """§12: a URL the stores cannot use fails at construction, naming the problem."""
        for url in (
            "http://localhost:6379",
            "redis://a:1,b:2/0",
            "redis://h:notaport/0",
            "redis://h:70000/0",
            "redis://h/abc",
            "redis://h/0?ssl_cert_reqs=maybe",
            "redis://h/0?bogus=1",
            "redis+sentinel://h:26379",
            "redis+cluster://h:7000/1",
            "unix://relative.sock",
        ):
            self.assertRaises(ValueError, parse_url, url)
            self.assertRaises(ValueError, RedisRateLimitStore, url)
        self.assertRaises(ValueError, Broadcast, "redis://h:nope/0")
        self.assertRaises(ValueError, RedisRateLimitStore, "rediss://h/0?ssl_ca_certs=/no/such/ca.pem")

    def test_passwords_never_shown(self) -> None:
        """§2.14 stores: logs and reprs hide passwords in every URL form."""
        self.assertEqual(safe_url("redis+sentinel://:pw@h:1,h:2/m"), "redis+sentinel://:***@h:1,h:2/m")
        self.assertNotIn("pw", repr(RedisRateLimitStore("redis+cluster://:pw@h:7000")))

    def test_key_slots_follow_redis_cluster(self) -> None:
        """§12 r5: CRC16 slots as Redis computes them, hash tags respected (one slot per script)."""
        self.assertEqual(key_slot("foo"), 12182)  # CLUSTER KEYSLOT foo
        self.assertEqual(key_slot("{user1000}.following"), key_slot("{user1000}.followers"))
        self.assertEqual(key_slot("{}x"), key_slot(b"{}x"))
