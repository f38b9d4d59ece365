"""200,000 hostile distinct inputs of each kind keep RSS growth under 64 MB (SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 200_000
LIMIT_MB = 64


@pytest.mark.live
@pytest.mark.timeout(600)
class MemoryGrowthTests(SynchronousTestCase):
    def test_hostile_inputs_do_not_grow_memory(self) -> None:
        """Valid-signature 10 KB tokens, forged session cookies, anonymous logins, spoofed XFF
        addresses and 404 paths with query strings: each kind grows a worker by less than 64 MB."""
        groups = ["tokens", "cookies,logins,addresses,paths"]  # two processes, run side by side
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "tests._support.memory_probe", str(COUNT), group],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for group in groups
        ]
        results = []
        for child in children:
            out, err = child.communicate(timeout=540)
            self.assertEqual(child.returncode, 0, err)
            results.append(json.loads(out))
        growth = {k: v for r in results for k, v in r["growth_mb"].items()}
        statuses = {k: v for r in results for k, v in r["statuses"].items()}
        self.assertEqual(set(growth), {"tokens", "cookies", "logins", "addresses", "paths"})
        for kind, grown in growth.items():
            self.assertLess(grown, LIMIT_MB, (kind, growth))
        self.assertEqual(statuses["tokens"], [200])  # the tokens really authenticated
        self.assertEqual(statuses["paths"], [404])
        self.assertEqual(results[1]["sessions_stored"], 0)  # anonymous logins stored nothing
