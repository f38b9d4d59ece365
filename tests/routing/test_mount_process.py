"""Mounts served by ``twistd cello`` and by cluster workers, as by app.run (SPEC_OPERATIONS §13 r1, r6)."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import PYTHON, TWISTD, alive, get, spawn, tempdir, write_app

pytestmark = pytest.mark.live  # starts processes and opens real sockets

APP = '''
import json
import os

from twisted.web.resource import Resource
from twisted.web.static import File

from cello_twisted import App

HERE = os.path.dirname(os.path.abspath(__file__))
app = App()


class Where(Resource):
    isLeaf = True

    def render(self, request):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({
            "pid": os.getpid(),
            "prepath": [s.decode() for s in request.prepath],
            "postpath": [s.decode() for s in request.postpath],
        }).encode()


@app.get("/")
def index(request):
    return {"pid": os.getpid()}


@app.get("/returned/{*rest}")
def returned(request):
    return Where()


app.mount("/files", File(os.path.join(HERE, "public")))
app.mount("/where", Where())
app.enable_security_headers()

if __name__ == "__main__":
    app.run()
'''

_TWISTD_PORT = r"serving on IPv4Address\(type='TCP', host='127\.0\.0\.1', port=(\d+)\)"


class MountProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, source=APP)
        os.makedirs(os.path.join(self.dir, "public"))
        with open(os.path.join(self.dir, "public", "hello.txt"), "w") as f:
            f.write("hello from disk")

    def check_mounts(self, port: int) -> set[int]:
        """The served app's mounts answer; returns the pids that answered."""
        status, body = get(port, "/files/hello.txt")
        self.assertEqual((status, body), (200, b"hello from disk"))
        status, body = get(port, "/where/a/b")
        seen = json.loads(body)
        self.assertEqual((status, seen["prepath"], seen["postpath"]), (200, ["where"], ["a", "b"]))
        seen = json.loads(get(port, "/returned/x/y")[1])
        self.assertEqual((seen["prepath"], seen["postpath"]), (["returned"], ["x", "y"]))
        status, _ = get(port, "/files/../app.py")
        self.assertEqual(status, 404)
        return {int(seen["pid"])}

    def test_twistd_serves_mounts(self) -> None:
        """§13 r6: `twistd cello --app` serves mounts and returned resources as app.run does."""
        child = spawn(
            self,
            [PYTHON, TWISTD, "-n", "--pidfile=", "cello", "--app", "app.py", "--listen", "tcp:0:interface=127.0.0.1"],
            self.dir,
        )
        port = int(child.wait_for(_TWISTD_PORT).group(1))
        self.check_mounts(port)
        child.send(signal.SIGTERM)
        child.wait()

    def test_cluster_workers_serve_mounts(self) -> None:
        """§13 r1: under app.run(workers=2) the workers (not the parent) render the mounted resources."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--workers", "2", "--no-logs"], self.dir)
        port = child.port()
        child.wait_for(r"worker 0 serving", 15)
        child.wait_for(r"worker 1 serving", 15)
        workers = {int(m) for m in re.findall(r"worker \d started \(pid (\d+)\)", child.output)}
        self.addCleanup(lambda: [os.kill(pid, signal.SIGKILL) for pid in workers if alive(pid)])
        pids: set[int] = set()
        for _ in range(4):
            pids |= self.check_mounts(port)
        self.assertTrue(pids <= workers and pids, (pids, workers))
        self.assertNotIn(child.proc.pid, pids)
        self.assertEqual(child.stop(), 0)
