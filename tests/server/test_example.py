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


PRODUCTION = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "production.py")


class ProductionExampleTests(SynchronousTestCase):
    def setUp(self) -> None:
        from prometheus_client import REGISTRY

        self.addCleanup(sys.modules.pop, "production", None)
        self.app = load_app(PRODUCTION)
        self.registry = REGISTRY

    def test_operations_features_work_together(self) -> None:
        """examples/production.py: lifespan state, readiness, request IDs in bodies and metrics per template."""
        with self.app.test_client() as client:
            ready = client.get("/health/ready")
            self.assertEqual((ready.status_code, ready.json()["checks"]), (200, {"inventory": "ok"}))
            found = client.get("/orders/7", headers={"X-Request-ID": "support-ticket-9"})
            self.assertEqual(found.json()["request_id"], "support-ticket-9")
            self.assertEqual(found.headers.get("X-Request-ID"), "support-ticket-9")
            missing = client.get("/orders/8")
            self.assertEqual(missing.status_code, 404)
            self.assertEqual(missing.json()["request_id"], missing.headers.get("X-Request-ID"))
            text = client.get("/metrics").text
            self.assertIn('cello_requests_total{method="GET",route="/orders/{id:int}",status="404"}', text)
        self.assertEqual(client.get("/health/ready").json()["checks"], {"server": "draining"})
