"""Production start-up warns once about revocations kept in memory (SPEC_OPERATIONS §11 r7)."""

from __future__ import annotations

import pytest
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, JwtConfig, SessionConfig
from cello_twisted.server._durability import revocation_warnings
from cello_twisted.stores import MemorySessionStore
from tests._support.processes import PYTHON, spawn, tempdir, write_app

SECRET = "k" * 64

APP = f'''
import os
from cello_twisted import App, JwtConfig, SessionConfig

app = App()
if os.environ.get("WITH_JWT"):
    app.enable_jwt(JwtConfig(secret={SECRET!r}))
if os.environ.get("WITH_SESSIONS"):
    app.enable_sessions(SessionConfig({SECRET!r}))
app.get("/")(lambda request: {{"ok": True}})

if __name__ == "__main__":
    app.run(port=0, logs=False)
'''


class _SharedBlacklist:
    """Stands in for RedisTokenBlacklist: any store that is not in process memory."""

    def add(self, key: str, expires_at: float) -> None:
        pass

    def contains(self, key: str) -> bool:
        return False


@pytest.mark.live
class StartupWarningTests(SynchronousTestCase):
    def run_app(self, workers: int, **env: str) -> str:
        directory = tempdir(self)
        path = write_app(directory, source=APP)
        child = spawn(self, [PYTHON, path, "--env", "production", "--workers", str(workers)], directory, env)
        child.port()
        if workers > 1:
            for index in range(workers):
                child.wait_for(f"worker {index} serving")
        self.assertEqual(child.stop(), 0)
        return child.output

    def test_jwt_and_sessions_warn_once_each(self) -> None:
        """One process: the JWT and the session warnings each appear exactly once, naming the Redis classes."""
        output = self.run_app(1, WITH_JWT="1", WITH_SESSIONS="1")
        self.assertEqual(output.count("JwtAuth keeps revoked tokens in process memory (MemoryTokenBlacklist)"), 1, output)
        self.assertEqual(output.count("Sessions keeps revoked session ids in process memory: revocations"), 1, output)
        self.assertIn("RedisTokenBlacklist", output)
        self.assertIn("RedisSessionStore", output)
        self.assertIn("lost on restart", output)

    def test_cluster_warns_once_not_once_per_worker(self) -> None:
        """With two workers the warning is still printed once (by the process the operator started)."""
        output = self.run_app(2, WITH_JWT="1")
        self.assertEqual(output.count("revocations are lost on restart"), 1, output)

    def test_development_and_plain_apps_do_not_warn(self) -> None:
        """No JWT or sessions: no warning."""
        output = self.run_app(1)
        self.assertNotIn("in process memory", output)


class WarningConditionTests(SynchronousTestCase):
    def test_shared_stores_silence_the_warning(self) -> None:
        """A non-memory blacklist (JWT) or store (sessions) needs no warning; memory ones do."""
        app = App()
        app.enable_jwt(JwtConfig(secret=SECRET, blacklist=_SharedBlacklist()))
        app.enable_sessions(SessionConfig(SECRET, revocations=_SharedBlacklist()))
        self.assertEqual(revocation_warnings(app), [])
        store_app = App()
        store_app.enable_sessions(SessionConfig(SECRET, store=object()))  # e.g. RedisSessionStore
        self.assertEqual(revocation_warnings(store_app), [])
        memory_app = App()
        memory_app.enable_sessions(SessionConfig(SECRET, store=MemorySessionStore()))
        self.assertEqual(len(revocation_warnings(memory_app)), 1)
