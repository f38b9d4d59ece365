"""Development reload: run the server as a child and restart it when a ``*.py`` file changes (SPEC §2.20 r12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._config import RELOADER_CHILD_ENV

POLL_SECONDS = 1.0
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env"}


def watch_root() -> Path:
    """The main script's directory (the working directory for ``python -m``)."""
    main = sys.argv[0] if sys.argv else ""
    if main and main not in ("-c", "-m") and os.path.exists(main):
        return Path(main).resolve().parent
    return Path.cwd()


def snapshot(root: Path) -> dict[str, int]:
    """mtimes of ``*.py`` below ``root``, skipping hidden dirs, caches and virtualenvs."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
        ]
        for name in filenames:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                try:
                    found[path] = os.stat(path).st_mtime_ns
                except OSError:
                    pass
    return found


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


class Reloader:
    """Owns one child server process and restarts it on source changes."""

    def __init__(self, command: list[str], root: Path, graceful_timeout: float, out: Callable[[str], None]) -> None:
        self.command = command
        self.root = root
        self.graceful_timeout = graceful_timeout
        self.out = out
        self.child: subprocess.Popen[bytes] | None = None

    def start_child(self) -> None:
        env = {**os.environ, RELOADER_CHILD_ENV: "1"}
        self.child = subprocess.Popen(self.command, env=env)

    def stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(self.graceful_timeout + 1)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def loop(self, sleep: Callable[[float], None] = time.sleep, rounds: int | None = None) -> None:
        """Poll every second; restart on change. A crashed child waits for the next change."""
        before = snapshot(self.root)
        self.start_child()
        reported = False
        while rounds is None or rounds > 0:
            if rounds is not None:
                rounds -= 1
            sleep(POLL_SECONDS)
            now = snapshot(self.root)
            if now != before:
                changed = sorted(set(now.items()) ^ set(before.items()))
                before = now
                self.out(f"cello_twisted reload: {changed[0][0] if changed else 'files'} changed; restarting")
                self.stop_child()
                self.start_child()
                reported = False
            elif self.child is not None and self.child.poll() is not None and not reported:
                self.out(f"cello_twisted reload: server exited with status {self.child.returncode}; waiting for a change")
                reported = True


def supervise(graceful_timeout: float) -> int:
    """Run the reload loop until SIGINT/SIGTERM; returns the exit status."""
    command = [sys.executable, *sys.orig_argv[1:]]

    def out(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    reloader = Reloader(command, watch_root(), graceful_timeout, out)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    out(f"cello_twisted reload: watching {reloader.root} for *.py changes")
    try:
        reloader.loop()
    except _Stop:
        pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        reloader.stop_child()
    return 0
