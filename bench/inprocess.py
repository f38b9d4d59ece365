"""In-process cost per request (µs): one keep-alive HTTPChannel fed raw requests.

A quieter companion to run.py for profiling the hot path:
    python bench/inprocess.py --run raw|stock|default hello|param|echo N   (N requests, for valgrind)
    python bench/inprocess.py [--profile [hello|param|echo]]   (the profile uses the default layer;
    CELLO_HTTP_PARSER=twisted profiles the stock channel)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

import cello_app  # noqa: E402
import raw_twisted  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

REQUESTS = {
    "hello": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "param": b"GET /users/42 HTTP/1.1\r\nHost: x\r\n\r\n",
    "echo": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
        b'{"name":"cello","count":42}'
    ),
}


def per_request(site, raw: bytes, n: int = 20000) -> float:
    proto = site.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            proto.dataReceived(raw)
            transport.clear()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    proto.connectionLost(None)
    return best


def main() -> None:
    raw_site = raw_twisted.Site(raw_twisted.build(), requestFactory=raw_twisted.Request)
    cello_site = cello_app.app.site()
    stock_site = cello_app.app.site(http_parser="twisted")
    if "--run" in sys.argv:  # for instruction counts: valgrind --tool=callgrind ... --run SITE REQUEST N
        at = sys.argv.index("--run")
        site = {"raw": raw_site, "stock": stock_site, "default": cello_site}[sys.argv[at + 1]]
        proto = site.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        raw = REQUESTS[sys.argv[at + 2]]
        for _ in range(int(sys.argv[at + 3])):
            proto.dataReceived(raw)
            transport.clear()
        return
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        cProfile.runctx("per_request(cello_site, REQUESTS[sys.argv[2] if len(sys.argv) > 2 else 'hello'], 20000)", globals(), locals(), "/tmp/cello.prof")
        pstats.Stats("/tmp/cello.prof").sort_stats("tottime").print_stats(25)
        return
    for name, raw in REQUESTS.items():
        r = per_request(raw_site, raw)
        s = per_request(stock_site, raw)
        c = per_request(cello_site, raw)
        print(
            f"{name:6s} raw twisted.web {r:6.1f} µs   cello stock channel {s:6.1f} µs   "
            f"cello default ({cello_site.limits.http_parser}) {c:6.1f} µs  ({r / c:.2f}x raw)"
        )


if __name__ == "__main__":
    main()
