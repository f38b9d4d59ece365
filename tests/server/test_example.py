"""examples/hello.py, the README's first command, loaded the way twistd loads a file (SPEC §2.21 r2)."""

from __future__ import annotations

import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.server._loader import load_app

HELLO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "hello.py")


class HelloExampleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.addCleanup(sys.modules.pop, "hello", None)
        self.client = load_app(HELLO).test_client()

    def test_routes(self) -> None:
        """§2.21 r2: the file loads without running its __main__ block; its three routes answer."""
        self.assertEqual(self.client.get("/").json(), {"message": "Hello, World!"})
        self.assertEqual(self.client.get("/users/42").json(), {"id": "42"})
        echoed = self.client.post("/echo", json={"a": [1, 2]})
        self.assertEqual((echoed.status, echoed.json()), (200, {"a": [1, 2]}))
