"""Helpers for the server tests: free ports, test apps on disk, child processes with bounded waits."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

PYTHON = sys.executable
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")

APP_SOURCE = '''
import os
import sys

from twisted.internet import reactor, task

from cello_twisted import App

app = App()
HOOK_LOG = os.environ.get("HOOK_LOG")


def note(line):
    if HOOK_LOG:
        with open(HOOK_LOG, "a") as f:
            f.write(line + "\\n")


@app.get("/")
def index(request):
    return {"pid": os.getpid(), "env": request.app.env, "debug": request.app.debug}


@app.get("/proto")
def proto(request):
    return {"clientproto": request.raw.clientproto.decode()}


@app.get("/slow")
def slow(request):
    seconds = float(request.query.get("s", "1"))
    print("slow request started", flush=True)  # tests wait for this line, not for a guessed delay
    return task.deferLater(reactor, seconds, lambda: {"pid": os.getpid(), "slow": seconds})


@app.get("/events")
def events(request):
    from cello_twisted import SseStream

    async def source():
        yield "hello"
        await task.deferLater(reactor, 60, lambda: None)
        yield "never"

    return SseStream(source(), ping_interval=None)


@app.on_event("startup")
def started():
    if os.environ.get("FAIL_STARTUP"):
        raise RuntimeError("database unreachable")
    note(f"startup {os.getpid()}")


@app.on_event("shutdown")
def stopped():
    note(f"shutdown {os.getpid()}")


class ShortSecret:
    """Stands in for a middleware holding a short secret."""

    native = True

    def __call__(self, request, call_next):
        return call_next(request)

    def secret_problems(self):
        return ["SessionConfig.secret is 5 bytes; at least 32 are required"]

    def cluster_warning(self):
        return "ShortSecret keeps per-process state"


if os.environ.get("SHORT_SECRET"):
    app.use(ShortSecret())


def make_app():
    return app


if __name__ == "__main__":
    kwargs = eval(os.environ.get("RUN_KWARGS", "{}"))
    app.run(**kwargs)
'''


def write_app(directory: str, name: str = "app.py", source: str = APP_SOURCE) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(source)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A child process whose merged output is collected by a thread; every wait is bounded."""

    def __init__(self, args: list[str], cwd: str, env: dict[str, str] | None = None, session: bool = False) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("CELLO_TWISTED_WORKER", None)
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=session,  # its own process group, like a terminal's foreground job
            preexec_fn=_default_sigint if session else None,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match[str]:
        """The first output line at or after ``start`` matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = regex.search(line)
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))
                self._cond.wait(min(remaining, 0.2))

    def port(self, timeout: float = 15.0) -> int:
        return int(self.wait_for(r"serving on https?://[^:]+:(\d+)", timeout).group(1))

    def send(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.send(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(testcase: Any, args: list[str], cwd: str, env: dict[str, str] | None = None, session: bool = False) -> Child:
    child = Child(args, cwd, env, session)
    testcase.addCleanup(child.kill)
    return child


def tempdir(testcase: Any) -> str:
    directory = tempfile.mkdtemp(prefix="cello-server-test-")
    testcase.addCleanup(_rmtree, directory)
    return directory


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def get(port: int, path: str = "/", timeout: float = 5.0, host: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
