"""Development reload: polling, restarts, waiting after a crash (SPEC §2.20 r12)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.server.reload import snapshot
from tests._support.processes import PYTHON, get, spawn, tempdir, wait_until, write_app


class SnapshotTests(SynchronousTestCase):
    def test_skips_hidden_caches_and_virtualenvs(self) -> None:
        """§2.20 r12: only *.py, skipping hidden dirs, __pycache__ and virtualenvs."""
        root = tempdir(self)
        for rel in ("a.py", "pkg/b.py", ".git/c.py", "__pycache__/d.py", "venv/e.py", "myenv/f.py", "notes.txt"):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        open(os.path.join(root, "myenv", "pyvenv.cfg"), "w").close()
        names = sorted(os.path.relpath(p, root) for p in snapshot(__import__("pathlib").Path(root)))
        self.assertEqual(names, ["a.py", os.path.join("pkg", "b.py")])


@pytest.mark.live
class ReloadProcessTests(SynchronousTestCase):
    def test_restart_on_change_and_wait_after_crash(self) -> None:
        """§2.20 r12: a change restarts the child (new pid); a broken edit waits for the next change; SIGTERM → 0."""
        from tests._support.processes import APP_SOURCE

        d = tempdir(self)
        path = write_app(d)
        port = str(__import__("tests._support.processes", fromlist=["free_port"]).free_port())
        child = spawn(self, [PYTHON, path, "--port", port, "--reload", "--no-logs"], d)
        child.wait_for("serving on")
        first = json.loads(get(int(port), "/")[1])["pid"]
        time.sleep(0.05)
        with open(path, "a") as f:
            f.write("\n# touched\n")
        start = len(child.lines)
        child.wait_for("changed; restarting", 10, start=start)
        child.wait_for("serving on", 10, start=start)
        second = json.loads(get(int(port), "/")[1])["pid"]
        self.assertNotEqual(first, second)
        with open(path, "a") as f:
            f.write("\nsyntax error here(\n")
        start = len(child.lines)
        child.wait_for("waiting for a change", 10, start=start)
        with open(path, "w") as f:
            f.write(APP_SOURCE)
        child.wait_for("serving on", 10, start=len(child.lines) - 1)
        self.assertTrue(wait_until(lambda: _ok(int(port)), 5))
        self.assertEqual(child.stop(signal.SIGTERM), 0)


def _ok(port: int) -> bool:
    try:
        return get(port, "/")[0] == 200
    except OSError:
        return False
