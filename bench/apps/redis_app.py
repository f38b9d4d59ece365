"""Rate-limit servers for bench/suites_redis.py: `python redis_app.py MODE PORT`.

Modes: memory (MemoryRateLimitStore), redis (RedisRateLimitStore at $CELLO_BENCH_REDIS_URL),
each for the sliding window and the token bucket. The limit is never reached (wrk treats 429 as
an error): the numbers measure the cost of counting, not of rejecting.
"""

import os
import sys


def build(mode):
    from cello_twisted import App, RateLimitConfig
    from cello_twisted.stores import MemoryRateLimitStore, RedisRateLimitStore

    backend, _, strategy = mode.partition("-")
    if backend == "redis":
        store = RedisRateLimitStore(
            os.environ["CELLO_BENCH_REDIS_URL"], prefix=f"bench:{os.getpid()}:"
        )
    else:
        store = MemoryRateLimitStore()
    app = App()
    # A window short enough that the sorted set stays small, a limit high enough never to reject.
    app.enable_rate_limit(RateLimitConfig(10**9, 2, strategy or "sliding_window", store=store))

    @app.get("/")
    def hello(request):
        return {"message": "Hello, World!"}

    app.env, app.debug = "production", False
    return app.site()


if __name__ == "__main__":
    from twisted.internet import reactor

    mode, port = sys.argv[1], int(sys.argv[2])
    reactor.listenTCP(port, build(mode), interface="127.0.0.1", backlog=1024)
    reactor.run()
