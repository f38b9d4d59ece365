"""Connections to Redis topologies: one server, a Sentinel-managed master, a Cluster.

Each connector offers ``execute(key, args) -> Deferred``: one pipelined connection per
server, opened on first use and reopened after a loss (Sentinel: re-asking the sentinels
for the master each time; Cluster: routing by key slot, refreshing the slot map on
``MOVED``, ``CLUSTERDOWN`` and lost nodes). Failures surface as RedisConnectionError or
RedisReplyError; the backend turns outages into 503s.
"""

from __future__ import annotations

import binascii
import socket
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.python.failure import Failure

from ._redis_protocol import RedisConnectionError, RedisProtocol, RedisReplyError
from ._redis_url import RedisTarget

Address = tuple[str, int]
SLOTS = 16384


def key_slot(key: bytes | str) -> int:
    """Redis Cluster's slot for ``key`` (CRC16/XMODEM of the ``{hash tag}`` if present)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % SLOTS


_resolver_pool: Any = None


def resolve(reactor: Any, address: Address | str) -> Deferred[Any]:
    """The IP to connect to: literals at once, names in a thread of our own.

    Twisted's default resolver uses the reactor's thread pool, which threaded handlers
    may fill; a Redis reconnect must not wait behind them (SPEC §12 r1).
    """
    if isinstance(address, str):
        return succeed(address)
    host = address[0]
    if isIPAddress(host) or isIPv6Address(host):
        return succeed(host)
    global _resolver_pool
    if _resolver_pool is None:
        _resolver_pool = daemon_pool(2, "cello-redis-resolver")
        reactor.addSystemEventTrigger("during", "shutdown", _resolver_pool.stop)
    from twisted.internet.threads import deferToThreadPool

    return deferToThreadPool(reactor, _resolver_pool, _lookup, host, address[1])


def daemon_pool(size: int, name: str) -> Any:
    """A started thread pool of daemon threads: it never keeps the process alive at exit."""
    import threading

    from twisted.python.threadpool import ThreadPool

    class DaemonThreadPool(ThreadPool):
        @staticmethod
        def threadFactory(*args: Any, **kwargs: Any) -> threading.Thread:  # type: ignore[override]
            return threading.Thread(*args, daemon=True, **kwargs)

    pool = DaemonThreadPool(0, size, name=name)
    pool.start()
    return pool


def _lookup(host: str, port: int) -> str:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise RedisConnectionError(f"cannot resolve {host!r}")
    return str(infos[0][4][0])


class Dialer:
    """Opens handshaken RedisProtocol connections (TCP, TLS or Unix; AUTH; SELECT)."""

    def __init__(self, reactor: Any, target: RedisTarget, timeout: float, tls: Any) -> None:
        self.reactor = reactor
        self.target = target
        self.timeout = timeout
        self.tls = tls  # host -> client connection creator, or None

    def endpoint(self, address: Address | str, ip: str, tls: bool = True) -> Any:
        """The endpoint for ``address`` already resolved to ``ip`` (TLS checks the original name)."""
        if isinstance(address, str):
            return UNIXClientEndpoint(self.reactor, address, timeout=self.timeout)
        host, port = address
        kind = TCP6ClientEndpoint if isIPv6Address(ip) else TCP4ClientEndpoint
        ep: Any = kind(self.reactor, ip, port, timeout=self.timeout)
        if tls and self.tls is not None:
            ep = wrapClientTLS(self.tls(host), ep)
        return ep

    def open(
        self,
        address: Address | str,
        *,
        auth: bool = True,
        db: int | None = None,
        tls: bool = True,
        expect_master: bool = False,
    ) -> Deferred[Any]:
        """A Deferred RedisProtocol, ready for commands, within ``timeout`` or a failure."""
        proto = RedisProtocol(self.reactor, self.timeout)
        d = resolve(self.reactor, address)
        d.addCallback(lambda ip: connectProtocol(self.endpoint(address, ip, tls), proto))

        def handshake(_: Any) -> Deferred[Any]:
            # TLS: the handshake completes (and the certificate is checked) before a reply arrives.
            steps: list[Deferred[Any]] = []
            target = self.target
            if auth and target.password is not None:
                args = ["AUTH", target.password]
                if target.username:
                    args.insert(1, target.username)
                steps.append(proto.execute(args))
            if db:
                steps.append(proto.execute(["SELECT", db]))
            if expect_master:
                steps.append(proto.execute(["ROLE"]).addCallback(_require_master))
            else:
                steps.append(proto.execute(["PING"]))
            chain = steps[0]
            for step in steps[1:]:
                chain = chain.addCallback(_then, step)
            return chain.addCallback(_then, proto)

        def drop_on_failure(failure: Failure) -> Failure:
            proto.drop()
            return failure

        d.addCallback(handshake).addErrback(drop_on_failure)
        d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=_connect_timed_out)
        return d


def _then(_: Any, value: Any) -> Any:
    return value


def _require_master(role: Any) -> None:
    if not role or role[0] != b"master":
        raise RedisConnectionError("the server is not a master (failover in progress)")


def _connect_timed_out(result: Any, timeout: float) -> Any:
    return Failure(RedisConnectionError(f"no connection within {timeout:g} s"))


class Node:
    """One server's connection: opened lazily, shared by every caller, reopened after a loss."""

    def __init__(self, dialer: Dialer, address_source: Callable[[], Deferred[Any]], **open_kw: Any) -> None:
        self.dialer = dialer
        self.address_source = address_source
        self.open_kw = open_kw
        self.proto: RedisProtocol | None = None
        self._waiters: list[Deferred[Any]] | None = None

    def execute(self, args: Sequence[Any]) -> Deferred[Any]:
        proto = self.proto
        if proto is not None:
            return proto.execute(args)
        return self.connection().addCallback(lambda p: p.execute(args))

    def connection(self) -> Deferred[Any]:
        """A Deferred RedisProtocol (the open one, or a new one shared by concurrent callers)."""
        if self.proto is not None:
            return succeed(self.proto)
        waiter: Deferred[Any] = Deferred()
        if self._waiters is None:
            self._waiters = [waiter]
            d = self.address_source()
            d.addCallback(lambda address: self.dialer.open(address, **self.open_kw))
            d.addBoth(self._opened)
        else:
            self._waiters.append(waiter)
        return waiter

    def _opened(self, result: Any) -> None:
        waiters, self._waiters = self._waiters or [], None
        if isinstance(result, RedisProtocol):
            self.proto = result
            result.on_lost = self._lost
            if not result.connected_:  # lost during the handshake's last step
                self.proto = None
                result = Failure(RedisConnectionError("connection lost"))
        for waiter in waiters:
            waiter.callback(result) if isinstance(result, RedisProtocol) else waiter.errback(result)

    def _lost(self, proto: RedisProtocol) -> None:
        if self.proto is proto:
            self.proto = None

    def drop(self) -> None:
        proto, self.proto = self.proto, None
        if proto is not None:
            proto.drop()


class SingleConnector:
    """``redis://``, ``rediss://``, ``unix://``: one connection to one server."""

    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer
        target = dialer.target
        address: Address | str = target.path if target.kind == "unix" else target.hosts[0]
        self.node = Node(dialer, lambda: succeed(address), db=target.db)

    def execute(self, key: Any, args: Sequence[Any]) -> Deferred[Any]:
        return self.node.execute(args)

    def on_reply_error(self, key: Any, error: RedisReplyError) -> None:
        if error.code == "READONLY":  # a demoted master: reconnect
            self.node.drop()

    def on_outage(self) -> None:
        pass

    def subscriber_address(self) -> Deferred[Any]:
        return self.node.address_source()

    def close(self) -> None:
        self.node.drop()


class SentinelConnector:
    """``redis+sentinel://``: asks the sentinels for the master on every (re)connect."""

    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer
        target = dialer.target
        self.sentinels = list(target.hosts)
        self.node = Node(dialer, self.master_address, db=target.db, expect_master=True)

    def master_address(self) -> Deferred[Any]:
        sentinels = list(self.sentinels)
        service = self.dialer.target.service
        errors: list[str] = []

        def ask(_: Any = None) -> Deferred[Any]:
            if not sentinels:
                return fail(RedisConnectionError("no sentinel knows the master: " + "; ".join(errors)))
            address = sentinels.pop(0)
            d = self.dialer.open(address, auth=False, tls=True)

            def query(proto: RedisProtocol) -> Deferred[Any]:
                def hang_up(result: Any) -> Any:
                    proto.drop()
                    return result

                q = proto.execute(["SENTINEL", "get-master-addr-by-name", service])
                return q.addBoth(hang_up)

            def answer(reply: Any) -> Any:
                if not reply:
                    raise RedisConnectionError(f"sentinel {address[0]}:{address[1]} does not know {service!r}")
                self._prefer(address)
                return (reply[0].decode(), int(reply[1]))

            def next_one(failure: Failure) -> Deferred[Any]:
                errors.append(f"{address[0]}:{address[1]}: {failure.getErrorMessage()}")
                return ask()

            return d.addCallback(query).addCallback(answer).addErrback(next_one)

        return ask()

    def _prefer(self, address: Address) -> None:
        """Ask the sentinel that answered first next time."""
        if self.sentinels and self.sentinels[0] != address:
            self.sentinels.remove(address)
            self.sentinels.insert(0, address)

    def execute(self, key: Any, args: Sequence[Any]) -> Deferred[Any]:
        return self.node.execute(args)

    def on_reply_error(self, key: Any, error: RedisReplyError) -> None:
        if error.code in ("READONLY", "MASTERDOWN"):
            self.node.drop()

    def on_outage(self) -> None:
        pass

    def subscriber_address(self) -> Deferred[Any]:
        return self.master_address()

    def close(self) -> None:
        self.node.drop()


class ClusterConnector:
    """``redis+cluster://``: commands go to the master owning their key's slot.

    The slot map comes from ``CLUSTER SLOTS`` of any reachable node; it is fetched on first
    use and again (at most one fetch at a time) after ``MOVED``, ``CLUSTERDOWN``,
    ``TRYAGAIN`` or a lost node. A ``MOVED`` reply is followed once at once, so a
    resharding costs no request; an ``ASK`` is followed with ``ASKING``.
    """

    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer
        self.seeds: list[Address] = list(dialer.target.hosts)
        self.nodes: dict[Address, Node] = {}
        self.slots: list[Address] | None = None
        self._refresh_waiters: list[Deferred[Any]] | None = None

    def node(self, address: Address) -> Node:
        node = self.nodes.get(address)
        if node is None:
            node = self.nodes[address] = Node(self.dialer, lambda: succeed(address))
        return node

    def execute(self, key: Any, args: Sequence[Any], redirects: int = 1) -> Deferred[Any]:
        slots = self.slots
        if slots is None:
            return self.refresh().addCallback(lambda _: self._send(key, args, redirects))
        return self._send(key, args, redirects)

    def _send(self, key: Any, args: Sequence[Any], redirects: int) -> Deferred[Any]:
        slots = self.slots
        if slots is None:
            return fail(RedisConnectionError("cluster slot map unavailable"))
        address = slots[key_slot(key)] if key is not None else slots[0]
        d = self.node(address).execute(args)
        if redirects:
            d.addErrback(self._redirect, key, args, redirects)
        return d

    def _redirect(self, failure: Failure, key: Any, args: Sequence[Any], redirects: int) -> Any:
        error = failure.value
        if isinstance(error, RedisReplyError) and error.code in ("MOVED", "ASK"):
            parts = str(error).split()
            if len(parts) == 3:
                host, _, port = parts[2].rpartition(":")
                address = (host or self.seeds[0][0], int(port))
                if error.code == "MOVED":
                    if self.slots is not None:
                        self.slots[int(parts[1])] = address
                    self.refresh().addErrback(lambda _: None)
                    return self.node(address).execute(args)
                node = self.node(address)
                node.execute(["ASKING"]).addErrback(lambda _: None)
                return node.execute(args)
        return failure

    def on_reply_error(self, key: Any, error: RedisReplyError) -> None:
        if error.code in ("CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY"):
            self.refresh().addErrback(lambda _: None)

    def on_outage(self) -> None:
        self.refresh().addErrback(lambda _: None)

    def refresh(self) -> Deferred[Any]:
        """Fetch the slot map (one fetch at a time); fires when done, fails if no node answers."""
        waiter: Deferred[Any] = Deferred()
        if self._refresh_waiters is not None:
            self._refresh_waiters.append(waiter)
            return waiter
        self._refresh_waiters = [waiter]
        candidates = list(dict.fromkeys(self.seeds + list(self.nodes)))
        errors: list[str] = []

        def ask(_: Any = None) -> Deferred[Any]:
            if not candidates:
                return fail(RedisConnectionError("no cluster node answered: " + "; ".join(errors)))
            address = candidates.pop(0)

            def failed(failure: Failure) -> Deferred[Any]:
                errors.append(f"{address[0]}:{address[1]}: {failure.getErrorMessage()}")
                return ask()

            d = self.node(address).execute(["CLUSTER", "SLOTS"])
            return d.addCallback(self._apply, address).addErrback(failed)

        def done(result: Any) -> None:
            waiters, self._refresh_waiters = self._refresh_waiters or [], None
            for w in waiters:
                if isinstance(result, Failure):
                    w.errback(result)
                else:
                    w.callback(None)

        ask().addBoth(done)
        return waiter

    def _apply(self, reply: Any, source: Address) -> None:
        if not reply:
            raise RedisConnectionError("cluster has no slots assigned")
        slots: list[Address] = [source] * SLOTS
        for entry in reply:
            start, end, master = int(entry[0]), int(entry[1]), entry[2]
            host = master[0].decode() if master[0] else source[0]
            address = (host, int(master[1]))
            slots[start : end + 1] = [address] * (end - start + 1)
        self.slots = slots
        for address in set(slots):
            if address not in self.seeds:
                self.seeds.append(address)

    def subscriber_address(self) -> Deferred[Any]:
        if self.slots is not None:
            return succeed(self.slots[0])
        return self.refresh().addCallback(self._first_master)

    def _first_master(self, _: Any) -> Address:
        assert self.slots is not None
        return self.slots[0]

    def close(self) -> None:
        for node in self.nodes.values():
            node.drop()


def connector(reactor: Any, target: RedisTarget, timeout: float, tls: Any) -> Any:
    """The connector for ``target``'s topology."""
    dialer = Dialer(reactor, target, timeout, tls)
    if target.kind == "sentinel":
        return SentinelConnector(dialer)
    if target.kind == "cluster":
        return ClusterConnector(dialer)
    return SingleConnector(dialer)
