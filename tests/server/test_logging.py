"""Log observers of app.run() and twistd: one clean text line per request, or JSON lines."""

from __future__ import annotations

import io
import json
import os
import re
import time

import pytest
from twisted.logger import Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.server._config import StartupError, resolve
from cello_twisted.server._logging import JsonLinesObserver, text_observer
from tests._support.processes import PYTHON, TWISTD, get, spawn, tempdir, wait_until, write_app


def _publish(observer: object, namespace: str, fmt: str, **fields: object) -> None:
    publisher = LogPublisher(observer)  # type: ignore[arg-type]
    Logger(namespace=namespace, observer=publisher).info(fmt, **fields)


ACCESS_FIELDS = {
    "method": "GET", "path": "/users/7", "status": 200, "duration_ms": 0.183,
    "client_ip": "10.1.2.3", "request_id": "abc",
}  # fmt: skip
ACCESS_FORMAT = "{method} {path} \u2192 {status} ({duration_ms:.3f}ms) {client_ip} {request_id}"


class TextObserverTests(SynchronousTestCase):
    def test_access_line_has_the_time_once(self) -> None:
        """An access event is one line: the time once, then method, path, status, duration, IP, id."""
        out = io.StringIO()
        _publish(text_observer(out), "cello_twisted.access", ACCESS_FORMAT, **ACCESS_FIELDS)
        line = out.getvalue()
        self.assertRegex(
            line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GET /users/7 \u2192 200 \(0\.183ms\) 10\.1\.2\.3 abc\n$"
        )
        self.assertEqual(len(re.findall(r"\d\d:\d\d:\d\d", line)), 1)

    def test_other_events_keep_their_namespace(self) -> None:
        """Non-access events keep the [namespace#level] tag, still with one timestamp."""
        out = io.StringIO()
        _publish(text_observer(out), "cello_twisted.server", "worker {n} serving", n=1)
        self.assertRegex(out.getvalue(), r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[cello_twisted\.server#info\] worker 1 serving\n$")


class JsonObserverTests(SynchronousTestCase):
    def test_one_json_object_per_line_with_the_fields(self) -> None:
        """log_format="json": each event is one JSON line holding the event's fields and its text."""
        out = io.StringIO()
        observer = JsonLinesObserver(out)
        _publish(observer, "cello_twisted.access", ACCESS_FORMAT, **ACCESS_FIELDS)
        _publish(observer, "cello_twisted.access", ACCESS_FORMAT, **{**ACCESS_FIELDS, "status": 404})
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        first = json.loads(lines[0])
        for key, value in ACCESS_FIELDS.items():
            self.assertEqual(first[key], value)
        self.assertEqual(first["log_namespace"], "cello_twisted.access")
        self.assertEqual(first["text"], "GET /users/7 \u2192 200 (0.183ms) 10.1.2.3 abc")
        self.assertIsInstance(first["log_time"], float)
        self.assertEqual(json.loads(lines[1])["status"], 404)


class OptionTests(SynchronousTestCase):
    def test_log_format_option_and_flag(self) -> None:
        """run(log_format=...) and --log-format accept text|json (flag wins); anything else is a start-up error."""
        self.assertEqual(resolve("127.0.0.1", 0, {}, []).log_format, "text")
        self.assertEqual(resolve("127.0.0.1", 0, {"log_format": "json"}, []).log_format, "json")
        self.assertEqual(resolve("127.0.0.1", 0, {"log_format": "json"}, ["--log-format", "text"]).log_format, "text")
        with self.assertRaises(StartupError):
            resolve("127.0.0.1", 0, {"log_format": "xml"}, [])
        with self.assertRaises(StartupError):
            resolve("127.0.0.1", 0, {}, ["--log-format=yaml"])


@pytest.mark.live
class LiveLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir)

    def test_run_text_log_is_one_clean_line(self) -> None:
        """A development server's access line: one timestamp, method, path, status, sub-ms duration, IP."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0"], self.dir)
        port = child.port()
        self.assertEqual(get(port, "/")[0], 200)
        match = child.wait_for(r"GET / \u2192 200", 10)
        line = match.string
        self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GET / \u2192 200 \(\d+\.\d{3}ms\) 127\.0\.0\.1$")
        self.assertEqual(child.stop(), 0)

    def test_run_json_log(self) -> None:
        """app.run(log_format="json"): every log line is JSON; the access line carries the fields."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--log-format", "json"], self.dir)
        port = int(child.wait_for(r"serving on http://[^:]+:(\d+)", 15).group(1))
        self.assertEqual(get(port, "/")[0], 200)
        child.wait_for(r'"log_namespace": "cello_twisted.access"', 10)
        self.assertEqual(child.stop(), 0)
        events = [json.loads(line) for line in child.lines if line.startswith("{")]
        access = [e for e in events if e.get("log_namespace") == "cello_twisted.access"]
        self.assertEqual(len(access), 1)
        self.assertEqual((access[0]["method"], access[0]["path"], access[0]["status"]), ("GET", "/", 200))
        self.assertEqual(access[0]["client_ip"], "127.0.0.1")
        others = [line for line in child.lines if line and not line.startswith("{") and "serving on" not in line]
        self.assertEqual(others, [])

    def test_twistd_json_log(self) -> None:
        """twistd cello --log-format json writes JSON lines (stdout under -n)."""
        from tests._support.processes import free_port

        port = free_port()
        child = spawn(
            self,
            [TWISTD, "-n", "--pidfile=", "cello", "--app", self.app_path, "--listen", f"tcp:{port}:interface=127.0.0.1",
             "--log-format", "json", "--logs"],
            self.dir,
        )
        child.wait_for(r"cello_twisted serving on", 15)
        self.assertTrue(wait_until(lambda: _answers(port), 10))
        child.wait_for(r'"log_namespace": "cello_twisted.access"', 10)
        child.send(15)
        child.wait(15)  # twistd re-raises the signal it stopped on
        access = [json.loads(line) for line in child.lines if '"cello_twisted.access"' in line]
        self.assertEqual(access[0]["path"], "/")
        self.assertTrue(all(line.startswith("{") for line in child.lines if line.strip()), child.output)


def _answers(port: int) -> bool:
    try:
        return get(port, "/")[0] == 200
    except OSError:
        time.sleep(0.05)
        return False


del os
