"""In-process µs per request of feature apps against the plain app (wall clock, no sockets).

    python bench/features_inprocess.py [MODE ...]      (default: plain jwt request-id metrics)
    bench/instructions_features.sh [MODE ...]           (the same requests, instructions per request)

Each app from ``apps/features.py`` gets one keep-alive channel (``site.buildProtocol``) fed the
same GET / request (with a valid ``Authorization: Bearer`` token, so every app parses the same
bytes; the jwt app answers it from its cache). Rounds alternate between the apps; the minimum
of 20 rounds of 4,000 requests is the figure to compare, the median shows the noise.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

import features  # noqa: E402
import jwt as pyjwt  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

TOKEN = pyjwt.encode({"sub": "u1", "exp": 4102444800}, features.SECRET, algorithm="HS256")
REQUEST = f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()


def run_only(mode: str, count: int) -> None:
    """``--run MODE N``: N requests and nothing else, for ``bench/instructions_features.sh``.

    ``time.time`` is frozen so the once-per-second Date header and the timers do the same work
    in every run.
    """
    frozen = 1_790_000_000.0
    time.time = lambda: frozen
    app = features.cello(mode)
    site = app if hasattr(app, "buildProtocol") else app.site()
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    for _ in range(count):
        protocol.dataReceived(REQUEST)
        transport.clear()


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        run_only(sys.argv[2], int(sys.argv[3]))
        return
    modes = sys.argv[1:] or ["plain", "jwt", "request-id", "metrics"]
    channels = {}
    for mode in modes:
        app = features.cello(mode)
        site = app if hasattr(app, "buildProtocol") else app.site()
        protocol = site.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(REQUEST)
        assert transport.value().startswith(b"HTTP/1.1 200"), transport.value()[:200]
        channels[mode] = (protocol, transport)
    rounds: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(20):
        for mode, (protocol, transport) in channels.items():
            start = time.perf_counter()
            for _ in range(4000):
                protocol.dataReceived(REQUEST)
                transport.clear()
            rounds[mode].append((time.perf_counter() - start) / 4000 * 1e6)
    base = min(rounds[modes[0]])
    for mode, values in rounds.items():
        values.sort()
        print(f"{mode:12s} min {values[0]:6.2f} µs  median {values[10]:6.2f} µs  min over {modes[0]}: {values[0] - base:+.2f} µs")


if __name__ == "__main__":
    main()
