"""Realtime benchmark: WebSocket echo messages/s over 100 connections, SSE events/s to 100 clients.

Self-contained: starts a cello_twisted server subprocess on 127.0.0.1 (pinned to CPU 0 when
``taskset`` exists), drives it from a client process (CPU 1) of raw sockets: pre-masked WebSocket
frames (a window of 8 in flight per connection) and SSE readers counting events, and prints a
small table. Numbers belong in reports, not in the repository.

    python bench/ws_sse.py                   # ~10 s per scenario
    python bench/ws_sse.py --duration 5 --connections 50
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

WINDOW = 8  # messages in flight per WebSocket connection


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(cpu: int) -> list[str]:
    return (
        ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    )


# -- server ---------------------------------------------------------------------------


def serve(port: int) -> None:
    from twisted.internet import reactor

    from cello_twisted import App, SseStream

    app = App()

    @app.websocket("/ws")
    async def echo(ws):
        async for msg in ws:
            ws.send(msg.payload)

    @app.get("/sse")
    def events(request):
        async def forever():
            n = 0
            while True:  # never awaits: the stream is paced by TCP back-pressure alone
                n += 1
                yield {"data": n, "event": "tick"}

        return SseStream(forever(), ping_interval=None)

    reactor.listenTCP(port, app.site(), interface="127.0.0.1", backlog=1024)
    reactor.callWhenRunning(lambda: print("READY", flush=True))
    reactor.run()


# -- clients ----------------------------------------------------------------------------


def run_ws(port: int, connections: int, duration: float) -> tuple[int, float]:
    """Raw-socket WebSocket clients (pre-masked 64-byte binary frames), so the client costs little
    and the server's work is what is measured."""
    import selectors

    payload = b"x" * 64
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = b"\x82" + bytes([0x80 | len(payload)]) + mask + masked
    reply_size = 2 + len(payload)  # server frames are unmasked
    sel = selectors.DefaultSelector()
    pending: dict[int, int] = {}
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"upgrade refused: {head[:80]!r}")
        s.setblocking(False)
        s.sendall(frame * WINDOW)
        pending[s.fileno()] = len(head.split(b"\r\n\r\n", 1)[1])
        sel.register(s, selectors.EVENT_READ)
    received = 0
    warm_until = time.perf_counter() + 0.5
    measuring = False
    started = end = 0.0
    while True:
        now = time.perf_counter()
        if not measuring and now >= warm_until:
            measuring, started, end, received = True, now, now + duration, 0
        if measuring and now >= end:
            break
        for key, _ in sel.select(timeout=0.1):
            sock = key.fileobj
            data = sock.recv(262144)
            if not data:
                sel.unregister(sock)
                continue
            total = pending[sock.fileno()] + len(data)
            complete, pending[sock.fileno()] = divmod(total, reply_size)
            received += complete
            if complete:
                sock.sendall(frame * complete)
    elapsed = time.perf_counter() - started
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return received, elapsed


def run_sse(port: int, connections: int, duration: float) -> tuple[int, float]:
    """Raw TCP readers counting complete events (blank-line terminated)."""
    import selectors

    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: bench\r\n\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    tails: dict[int, bytes] = {}
    events = 0
    warm_until = time.perf_counter() + 0.5
    measuring = False
    started = end = 0.0
    while True:
        now = time.perf_counter()
        if not measuring and now >= warm_until:
            measuring, started, end, events = True, now, now + duration, 0
        if measuring and now >= end:
            break
        for key, _ in sel.select(timeout=0.1):
            sock = key.fileobj
            data = sock.recv(262144)
            if not data:
                sel.unregister(sock)
                continue
            chunk = tails.get(sock.fileno(), b"") + data
            events += chunk.count(b"\n\n")
            tails[sock.fileno()] = chunk[-1:]
    elapsed = time.perf_counter() - started
    for s in socks:
        s.close()
    return events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["ws", "sse"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.client:
        runner = run_ws if args.client == "ws" else run_sse
        count, elapsed = runner(args.port, args.connections, args.duration)
        print(f"{count} {elapsed}", flush=True)
        return
    rows = []
    for scenario in ("ws", "sse"):
        port = _free_port()
        server = subprocess.Popen(
            _pin(0) + [sys.executable, __file__, "--serve", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            if server.stdout.readline().strip() != "READY":
                raise SystemExit("server failed to start")
            client = subprocess.run(
                _pin(1)
                + [sys.executable, __file__, "--client", scenario, "--port", str(port)]
                + ["--connections", str(args.connections), "--duration", str(args.duration)],
                capture_output=True,
                text=True,
                timeout=args.duration + 60,
            )
            if client.returncode != 0:
                raise SystemExit(client.stderr)
            count, elapsed = client.stdout.split()
            rows.append((scenario, int(count), float(elapsed)))
        finally:
            server.terminate()
            server.wait(10)
    labels = {"ws": "WebSocket echo (messages)", "sse": "SSE events delivered"}
    print(f"\n{'scenario':<28}{'conns':>7}{'seconds':>9}{'total':>12}{'per second':>13}")
    for scenario, count, elapsed in rows:
        print(
            f"{labels[scenario]:<28}{args.connections:>7}{elapsed:>9.1f}{count:>12}{count / elapsed:>13.0f}"
        )


if __name__ == "__main__":
    main()
