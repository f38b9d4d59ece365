"""Profile a bench server on the wire: cProfile inside the server while wrk loads it.

    python bench/profile_server.py [--parser httptools|twisted] [--path /] [--duration 4]

Prints the top functions by own time and the share of the reactor's I/O path.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "apps"))
sys.path.insert(0, str(HERE))


def _fn(file_part: str, name: str):
    return lambda key: file_part in key[0] and key[2] == name


#: (label, which profile entry) -> printed as a share of all profiled time (cumulative, so nested).
SHARES = [
    ("reactor dispatch (callWithLogger, all of it)", _fn("twisted/python/log.py", "callWithLogger")),
    ("channel dataReceived (everything below the reactor)", lambda k: k[2] == "dataReceived" and "_channel" in k[0]),
    ("kernel send()", lambda k: k[2] == "<method 'send' of '_socket.socket' objects>"),
    ("kernel recv()", lambda k: k[2] == "<method 'recv' of '_socket.socket' objects>"),
    ("epoll.poll", lambda k: k[2] == "<method 'poll' of 'select.epoll' objects>"),
    ("request construction (requestFactory)", _fn("cello_twisted/server/_site.py", "__init__")),
    ("end of headers (allHeadersReceived)", lambda k: k[2] == "allHeadersReceived" and "cello_twisted" in k[0]),
    ("Request.process (resource lookup, render, write, finish)", lambda k: k[2] == "process" and "cello_twisted" in k[0]),
    ("AppResource.render (cello: route, Request, chain, writer)", _fn("routing/_resource.py", "render")),
    ("response head serialisation (writeHeaders)", lambda k: k[2] == "writeHeaders"),
    ("Request.finish", _fn("twisted/web/http.py", "finish")),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parser", default=None)
    parser.add_argument("--path", default="/")
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    import cello_app
    import run
    from twisted.internet import reactor

    cello_app.app.env, cello_app.app.debug = "production", False
    kwargs = {"http_parser": args.parser} if args.parser else {}
    port = reactor.listenTCP(0, cello_app.app.site(**kwargs), interface="127.0.0.1", backlog=1024)
    number = port.getHost().port
    result: dict[str, str] = {}

    def load() -> None:
        cmd = run._wrk_cmd(number, args.path, None, [], args.duration)
        result["wrk"] = subprocess.run(cmd, capture_output=True, text=True).stdout
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=load, daemon=True).start()
    profile = cProfile.Profile()
    profile.enable()
    reactor.run()
    profile.disable()
    requests = run._wrk_parse(result["wrk"], args.path)[1]
    stats = pstats.Stats(profile)
    print(f"{requests} requests; profiled µs per request = {stats.total_tt / requests * 1e6:.1f}")
    total = stats.total_tt
    print("cumulative share of the profiled time:")
    for label, needle in SHARES:
        cum = sum(v[3] for k, v in stats.stats.items() if needle(k))  # type: ignore[attr-defined]
        print(f"  {label:55s} {cum / total * 100:5.1f}%")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
