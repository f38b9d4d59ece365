"""Exactness across real processes sharing one Redis: cluster workers and separate servers."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import PYTHON, spawn, tempdir, write_app

from ._redis_server import start

pytestmark = pytest.mark.live  # starts processes or opens real sockets

APP_SOURCE = """
import os

from twisted.internet import reactor, task

from cello_twisted import App, JwtConfig, RateLimitConfig, SessionConfig
from cello_twisted.middleware import JwtAuth
from cello_twisted.stores import RedisRateLimitStore, RedisSessionStore, RedisTokenBlacklist

URL = os.environ["REDIS_URL"]
app = App()


class WorkerHeader:
    native = True

    def __call__(self, request, call_next):
        resp = call_next(request)
        if hasattr(resp, "addCallback"):
            return resp.addCallback(self.stamp)
        return self.stamp(resp)

    def stamp(self, resp):
        resp.headers.set("X-Worker", str(os.getpid()))
        return resp


app.use(WorkerHeader())
app.use(JwtAuth(JwtConfig(secret=b"p" * 32, blacklist=RedisTokenBlacklist(URL)), required=False))
app.enable_sessions(SessionConfig(secret=b"q" * 32, secure=False, store=RedisSessionStore(URL),
                                  revocations=RedisTokenBlacklist(URL)))
LIMIT = RateLimitConfig(10, 60, store=RedisRateLimitStore(URL), key=lambda r: r.headers.get("X-Client"))


@app.get("/limited", rate_limit=LIMIT)
def limited(request):
    return {"ok": True}


@app.get("/pid")
def pid(request):
    return task.deferLater(reactor, 0.02, lambda: {"pid": os.getpid()})


@app.post("/login")
def login(request):
    request.session["user"] = "ann"
    return {"token": request.app.jwt.create_token({"sub": "ann"})}


@app.post("/logout")
def logout(request):
    request.session.clear()
    return request.app.jwt.revoke(request.jwt_token).addCallback(lambda _: {"ok": True})


@app.get("/me")
def me(request):
    claims = request.context.get("jwt_claims")
    return {"user": request.session.get("user"), "sub": claims and claims["sub"]}


@app.get("/claims")
def claims(request):
    return {"sub": request.jwt_claims["sub"]}


if __name__ == "__main__":
    app.run()
"""


def request(port: int, method: str, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("X-Worker"), resp.getheader("Set-Cookie"), resp.read()
    finally:
        conn.close()


class ProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.redis = start(self)
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, "redis_app.py", APP_SOURCE)

    def serve(self, *flags: str):
        child = spawn(
            self,
            [PYTHON, self.app_path, "--port", "0", "--no-logs", *flags],
            self.dir,
            {"REDIS_URL": self.redis.url},
        )
        self.addCleanup(child.stop)
        return child, child.port()

    def test_cluster_workers_enforce_one_exact_limit(self) -> None:
        """§2.14 stores: 2 workers sharing Redis, limit 10/60 s, 100 concurrent requests -> exactly 10 pass."""
        child, port = self.serve("--workers", "2")
        child.wait_for(r"worker 0 serving", 15)
        child.wait_for(r"worker 1 serving", 15)
        seen: set[str] = set()
        deadline = time.monotonic() + 10
        with ThreadPoolExecutor(16) as pool:
            while len(seen) < 2 and time.monotonic() < deadline:  # both workers are answering
                seen.update(
                    w for _, w, _, _ in pool.map(lambda _: request(port, "GET", "/pid"), range(16))
                )
        self.assertEqual(len(seen), 2, "both workers should answer")
        barrier = threading.Barrier(100, timeout=10)

        def burst(_: int):
            barrier.wait()
            return request(port, "GET", "/limited", {"X-Client": "burst"})

        with ThreadPoolExecutor(100) as pool:
            results = list(pool.map(burst, range(100)))
        statuses = sorted(status for status, _, _, _ in results)
        self.assertEqual(statuses.count(200), 10, statuses)
        self.assertEqual(statuses.count(429), 90, statuses)
        for status, _, _, body in results:
            if status == 429:
                self.assertEqual(json.loads(body)["status"], 429)

    def test_logout_through_one_server_is_seen_by_the_other(self) -> None:
        """§2.10 r10, §2.12 r10: session cleared and JWT revoked via A are rejected by B on the next request."""
        (_, port_a), (_, port_b) = self.serve(), self.serve()
        status, worker_a, cookie, body = request(port_a, "POST", "/login")
        self.assertEqual(status, 200)
        token = json.loads(body)["token"]
        headers = {"Cookie": cookie.split(";", 1)[0], "Authorization": f"Bearer {token}"}
        status, worker_b, _, body = request(port_b, "GET", "/me", headers)
        self.assertNotEqual(worker_a, worker_b)
        self.assertEqual(json.loads(body), {"user": "ann", "sub": "ann"})
        status, _, _, _ = request(port_a, "POST", "/logout", headers)
        self.assertEqual(status, 200)
        status, _, _, body = request(port_b, "GET", "/me", headers)
        self.assertEqual((status, json.loads(body)), (200, {"user": None, "sub": None}))
        status, _, _, body = request(port_b, "GET", "/claims", headers)
        self.assertEqual((status, json.loads(body)["detail"]), (401, "Token has been revoked"))
