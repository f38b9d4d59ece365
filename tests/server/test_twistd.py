"""The twistd plugin: serving, --app forms, cluster, usage errors (SPEC §2.21)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App
from cello_twisted.server import tap
from tests._support.processes import (
    PYTHON,
    TWISTD,
    alive,
    get,
    spawn,
    tempdir,
    wait_until,
    write_app,
)

_PORT = r"serving on IPv4Address\(type='TCP', host='127\.0\.0\.1', port=(\d+)\)"


@pytest.mark.live
class TwistdProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        write_app(self.dir)
        self.hooks = os.path.join(self.dir, "hooks.log")

    def twistd(self, *args: str):
        return spawn(self, [PYTHON, TWISTD, "-n", "--pidfile=", "cello", *args], self.dir, {"HOOK_LOG": self.hooks})

    def test_serves_file_app_and_runs_hooks(self) -> None:
        """§2.21 r2-r4: --app file.py serves on --listen; env defaults to production; hooks around serving."""
        child = self.twistd("--app", "app.py", "--listen", "tcp:0:interface=127.0.0.1")
        port = int(child.wait_for(_PORT).group(1))
        body = json.loads(get(port, "/")[1])
        self.assertEqual((body["env"], body["debug"]), ("production", False))
        child.send(signal.SIGTERM)
        child.wait()
        with open(self.hooks) as f:
            self.assertEqual([line.split()[0] for line in f], ["startup", "shutdown"])

    def test_module_attr_factory_form(self) -> None:
        """§2.21 r2: package.module:attr, where attr is a factory returning the App."""
        child = self.twistd("--app", "app:make_app", "--listen", "tcp:0:interface=127.0.0.1", "--debug")
        port = int(child.wait_for(_PORT).group(1))
        self.assertEqual(json.loads(get(port, "/")[1])["debug"], True)
        child.send(signal.SIGINT)
        self.assertIsNotNone(child.wait())

    def test_workers_cluster(self) -> None:
        """§2.21 r5: --workers 2 runs the cluster for a tcp: endpoint; workers get no pidfile clash."""
        from tests._support.processes import free_port

        port = free_port()
        child = self.twistd("--app", "app.py", "--listen", f"tcp:{port}:interface=127.0.0.1", "--workers", "2")
        child.wait_for(r"worker 0 serving|serving on .*port=")
        wait_until(lambda: len(re.findall(r"serving on IPv4", child.output)) >= 2, 15)
        pids = {int(p) for p in re.findall(r"worker \d started \(pid (\d+)\)", child.output)}
        self.assertEqual(len(pids), 2, child.output)
        seen = {json.loads(get(port, "/slow?s=0.05")[1])["pid"] for _ in range(4)}
        self.assertTrue(seen <= pids)
        child.send(signal.SIGTERM)
        child.wait()
        self.assertTrue(wait_until(lambda: not any(alive(p) for p in pids), 5))

    def test_port_in_use_exits_one(self) -> None:
        """§2.21 r4, §2.20 r5: a listen failure under twistd is logged and exits 1 (not 0)."""
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            child = self.twistd("--app", "app.py", "--listen", f"tcp:{port}:interface=127.0.0.1")
            self.assertEqual(child.wait(), 1)
        self.assertIn("startup failed: CannotListenError", child.output)

    def test_usage_error_exits_nonzero(self) -> None:
        """§2.21 r6: a usage error (here: no --app) exits non-zero with the reason."""
        result = subprocess.run([PYTHON, TWISTD, "-n", "--pidfile=", "cello"], cwd=self.dir,
                                capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--app is required", result.stdout + result.stderr)


class OptionsTests(SynchronousTestCase):
    """§2.21 r6: each invalid command line is a usage error."""

    def setUp(self) -> None:
        self.dir = tempdir(self)
        write_app(self.dir, "plugapp.py")
        self.path = os.path.join(self.dir, "plugapp.py")
        self.addCleanup(sys.modules.pop, "plugapp", None)

    def parse(self, *args: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(list(args))
        return options

    def assertUsage(self, message: str, *args: str) -> None:
        with self.assertRaises(usage.UsageError) as caught:
            self.parse(*args)
        self.assertIn(message, str(caught.exception))

    def test_valid_defaults(self) -> None:
        """§2.21 r3, r4: defaults: tcp:8000 on 127.0.0.1, production, one worker; file apps load without __main__."""
        options = self.parse("--app", self.path)
        self.assertIsInstance(options["app_object"], App)
        self.assertEqual([s.description for s in options["specs"]], [tap.DEFAULT_LISTEN])
        self.assertEqual((options["env"], options["workers"]), ("production", 1))

    def test_missing_app(self) -> None:
        """§2.21 r6: no --app."""
        self.assertUsage("--app is required")

    def test_missing_file_module_attribute(self) -> None:
        """§2.21 r6: file, module or attribute not found."""
        self.assertUsage("no such file", "--app", os.path.join(self.dir, "nope.py"))
        self.assertUsage("no module named 'no_such_module_xyz'", "--app", "no_such_module_xyz")
        self.assertUsage("has no attribute 'missing'", "--app", f"{self.path}:missing")

    def test_not_an_app(self) -> None:
        """§2.21 r6: the object is not an App (and a factory must return one)."""
        self.assertUsage("not a cello_twisted App", "--app", f"{self.path}:HOOK_LOG")
        self.assertUsage("not a cello_twisted App", "--app", f"{self.path}:ShortSecret")

    def test_bad_endpoint(self) -> None:
        """§2.21 r6: an endpoint string Twisted cannot build."""
        self.assertUsage("bad endpoint", "--app", self.path, "--listen", "bogus:123")
        self.assertUsage("bad endpoint", "--app", self.path, "--listen", "tcp:notaport")

    def test_workers(self) -> None:
        """§2.21 r6: --workers < 1, and workers > 1 with a non-tcp/ssl endpoint."""
        with self.assertRaises(usage.UsageError):
            self.parse("--app", self.path, "--workers", "0")
        self.assertUsage("needs tcp: or ssl: endpoints", "--app", self.path, "--workers", "2",
                         "--listen", f"unix:{self.dir}/s.sock")

    def test_short_secret_in_production(self) -> None:
        """§1 r8: twistd defaults to production, so a short secret refuses to start."""
        os.environ["SHORT_SECRET"] = "1"
        self.addCleanup(os.environ.pop, "SHORT_SECRET", None)
        self.assertUsage("refusing to start in production", "--app", self.path)
        self.assertIsInstance(self.parse("--app", self.path, "--env", "development")["app_object"], App)

    def test_worker_argv_forces_foreground_and_no_pidfile(self) -> None:
        """§2.21 r5: re-run workers never daemonize or fight over the parent's pidfile."""
        argv = tap.worker_argv(["/bin/twistd", "--pidfile", "x.pid", "cello", "--app", "a.py"])
        self.assertEqual(argv, ["/bin/twistd", "--pidfile", "x.pid", "--nodaemon", "--pidfile=", "cello", "--app", "a.py"])

    @pytest.mark.live
    def test_plugin_module_is_lazy(self) -> None:
        """§2.21 r1: the plugin is found by twistd and its module imports no reactor."""
        code = ("import sys; from twisted.plugin import getPlugins; from twisted.application.service import IServiceMaker; "
                "names = [p.tapname for p in getPlugins(IServiceMaker)]; "
                "print('cello' in names, 'twisted.internet.reactor' in sys.modules)")
        result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, cwd=self.dir)
        self.assertEqual(result.stdout.split(), ["True", "False"], result.stderr)
