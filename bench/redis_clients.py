"""CPU per Redis operation for each way of calling Redis from Twisted (in-process, no wrk).

    python bench/redis_clients.py [--ops 20000] [--concurrency 50]

Starts a throw-away redis-server, then for each client runs ``--ops`` rate-limit script
calls (the sliding-window Lua script of RedisRateLimitStore, ``EVALSHA``) with
``--concurrency`` calls in flight, and reports this process's CPU time per operation
(``time.process_time``: all threads, so thread hops are counted) and wall time.
CPU per operation is what matters on a shared machine: wall time depends on the neighbours.

Clients:
- shared-pool:  redis-py via deferToThread (the reactor's pool; what v0.4 did)
- own-pool:     redis-py via deferToThreadPool on a dedicated 10-thread pool
- asyncio:      redis-py's asyncio client on a dedicated asyncio thread
- txredisapi:   txredisapi (Twisted-native, pure-Python RESP parser)
- native:       cello_twisted's RedisBackend (Twisted protocol, hiredis parser)
Also the whole ``RedisRateLimitStore.hit`` vs ``MemoryRateLimitStore.hit``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "stores"))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.threads import deferToThread, deferToThreadPool  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

from cello_twisted import RateLimitConfig  # noqa: E402
from cello_twisted.stores import MemoryRateLimitStore, RedisRateLimitStore  # noqa: E402
from cello_twisted.stores._redis_client import RedisBackend, Script  # noqa: E402
from cello_twisted.stores._redis_scripts import SLIDING_WINDOW  # noqa: E402

SCRIPT = Script(SLIDING_WINDOW)


def script_args(i: int) -> tuple[str, tuple[Any, ...]]:
    now = 1000.0 + i * 1e-4
    key = f"bench:{i % 64}"
    return key, (repr(now - 60), repr(now), 1_000_000, f"{now!r}:{i}", 60000)


async def drive(call: Any, ops: int, concurrency: int) -> tuple[float, float]:
    """Run ``call(i)`` ``ops`` times with ``concurrency`` in flight; (cpu µs/op, wall µs/op)."""
    counter = iter(range(ops))

    async def lane() -> None:
        for i in counter:
            await call(i)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(lane()) for _ in range(concurrency)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / ops * 1e6, wall / ops * 1e6


def redis_py_call(client: Any) -> Any:
    sha = client.script_load(SLIDING_WINDOW)

    def call(i: int) -> Any:
        key, args = script_args(i)
        return client.evalsha(sha, 1, key, *args)

    return call


async def main(opts: argparse.Namespace) -> None:
    import _redis_server as _server  # tests/stores/_redis_server.py: a throw-away redis-server

    server = _server.RedisServer()
    host, port = "127.0.0.1", server.port
    results: list[tuple[str, float, float]] = []
    own = ThreadPool(10, 10, name="bench-redis")
    loop = asyncio.new_event_loop()
    url = f"redis://{host}:{port}/0"
    try:
        import redis

        sync = redis.Redis(host=host, port=port, max_connections=64)
        blocking = redis_py_call(sync)
        reactor.suggestThreadPoolSize(10)

        async def shared_pool(i: int) -> Any:
            return await deferToThread(blocking, i)

        async def own_pool(i: int) -> Any:
            if not own.started:
                own.start()
            return await deferToThreadPool(reactor, own, blocking, i)

        import redis.asyncio as aredis

        aclient = aredis.Redis(host=host, port=port, max_connections=64)

        async def aio_call(i: int) -> Any:
            key, args = script_args(i)
            return await aclient.evalsha(SCRIPT.sha.decode(), 1, key, *args)

        async def asyncio_thread(i: int) -> Any:
            if not loop.is_running():
                threading.Thread(target=loop.run_forever, daemon=True).start()
            fut = asyncio.run_coroutine_threadsafe(aio_call(i), loop)
            d: defer.Deferred = defer.Deferred()
            fut.add_done_callback(lambda f: reactor.callFromThread(_settle, d, f))
            return await d

        tx: list[Any] = []

        async def txredis(i: int) -> Any:
            if not tx:
                import txredisapi

                tx.append(await txredisapi.ConnectionPool(host, port, poolsize=1))
            key, args = script_args(i)
            return await tx[0].evalsha(SCRIPT.sha.decode(), [key], list(args))

        backend = RedisBackend("bench", url, None, 1.0)

        async def native(i: int) -> Any:
            key, args = script_args(i)
            return await backend.script(SCRIPT, key, args)

        store = RedisRateLimitStore(url, prefix="bench-store:")
        memory = MemoryRateLimitStore()
        cfg = RateLimitConfig.sliding_window(1_000_000, 60)

        async def store_hit(i: int) -> Any:
            return await store.hit(f"k{i % 64}", cfg, 1000.0 + i * 1e-4)

        async def memory_hit(i: int) -> Any:
            return memory.hit(f"k{i % 64}", cfg, 1000.0 + i * 1e-4)

        clients = [
            ("shared-pool (redis-py, deferToThread)", shared_pool),
            ("own-pool (redis-py, dedicated ThreadPool)", own_pool),
            ("asyncio (redis.asyncio on its own thread)", asyncio_thread),
            ("txredisapi (Twisted-native, Python parser)", txredis),
            ("native (Twisted protocol + hiredis)", native),
            ("RedisRateLimitStore.hit (native)", store_hit),
            ("MemoryRateLimitStore.hit", memory_hit),
        ]
        try:
            import txredisapi  # noqa: F401 - optional: pip install txredisapi to compare it
        except ImportError:
            clients = [c for c in clients if c[1] is not txredis]
        for name, call in clients:
            if opts.only and opts.only not in name:
                continue
            print("running", name, file=sys.stderr, flush=True)
            await drive(call, min(2000, opts.ops), opts.concurrency)  # warm up: connect, load
            best = min(
                [await drive(call, opts.ops, opts.concurrency) for _ in range(opts.rounds)]
            )
            results.append((name, *best))
        if tx:
            await tx[0].disconnect()
    finally:
        if own.started:
            own.stop()
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        server.close()
    print(f"{opts.ops} ops, {opts.concurrency} in flight, best of {opts.rounds}; pid {os.getpid()}")
    print(f"{'client':48} {'CPU µs/op':>10} {'wall µs/op':>11}")
    for name, cpu, wall in results:
        print(f"{name:48} {cpu:10.1f} {wall:11.1f}")


def _settle(d: defer.Deferred, fut: Any) -> None:
    exc = fut.exception()
    if exc is not None:
        d.errback(exc)
    else:
        d.callback(fut.result())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="")
    options = parser.parse_args()

    def run() -> None:
        d = defer.Deferred.fromCoroutine(main(options))
        d.addErrback(lambda f: f.printTraceback())
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
