"""Acceptance 2 (SPEC_OPERATIONS §9): schemathesis, fed the live example app's own /openapi.json,
finds no server error and no response that contradicts the document."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

from .._support.processes import PYTHON, get, spawn, tempdir

pytestmark = pytest.mark.live

EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "typed_api.py"))
SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")


class SchemathesisLiveTests(SynchronousTestCase):
    @pytest.mark.timeout(300)
    def test_example_app_conforms_to_its_document(self) -> None:
        """Every check schemathesis has, 30 examples per operation over all phases: no issue found."""
        # A test dependency: missing, it fails here rather than skipping unnoticed.
        executable = SCHEMATHESIS if os.path.exists(SCHEMATHESIS) else shutil.which("schemathesis")
        self.assertIsNotNone(executable, "schemathesis is not installed (pip install 'cello-twisted[test]')")
        workdir = tempdir(self)
        env = {"PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), os.getcwd()) if p)}
        server = spawn(self, [PYTHON, EXAMPLE, "--port", "0", "--no-logs"], cwd=workdir, env=env)
        port = server.port(timeout=30)
        self.assertEqual(get(port, "/openapi.json")[0], 200)
        result = subprocess.run(
            [
                executable,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "30",
                "--workers",
                "1",
                "--seed",
                "20261129",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            cwd=workdir,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=240,
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("No issues found", output)
        self.assertRegex(output, r"Tested: 7")
        self.assertNotIn("Traceback", server.output)
