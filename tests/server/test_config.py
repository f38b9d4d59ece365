"""Resolving run() settings from flags, arguments and defaults (SPEC §2.20 r1-r3, r12)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import TlsConfig
from cello_twisted.server._config import StartupError, parse_flags, resolve


def opts(argv=(), environ=None, host="127.0.0.1", port=8000, **kwargs):
    return resolve(host, port, kwargs, list(argv), environ or {})


class ResolveTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """§2.20 r2: development, debug on, logs follow debug, one worker, 30 s graceful timeout."""
        o = opts()
        self.assertEqual((o.host, o.port, o.env, o.debug, o.logs, o.workers, o.reload, o.tls, o.graceful_timeout),
                         ("127.0.0.1", 8000, "development", True, True, 1, False, None, 30.0))

    def test_production_defaults(self) -> None:
        """§2.20 r2: production: debug off, logs off, os.cpu_count() workers."""
        import os

        o = opts(env="production")
        self.assertEqual((o.debug, o.logs, o.workers), (False, False, os.cpu_count() or 1))
        self.assertEqual(opts(env="production", debug=True).workers, 1)

    def test_flag_beats_argument_beats_default(self) -> None:
        """§2.20 r1: a flag overrides the run() argument; unknown argv entries are ignored."""
        o = opts(["--port", "9000", "--junk", "--env=production", "--workers", "3", "-x"], port=7000, env="development", workers=2)
        self.assertEqual((o.port, o.env, o.workers), (9000, "production", 3))
        self.assertEqual(opts(port=7000).port, 7000)
        self.assertEqual(opts(["--host", "0.0.0.0"], host="127.0.0.1").host, "0.0.0.0")

    def test_switches(self) -> None:
        """§2.20: --debug, --reload and --no-logs."""
        o = opts(["--debug", "--no-logs", "--reload"], env="production", debug=False)
        self.assertEqual((o.debug, o.logs, o.reload), (True, False, False))  # reload ignored in production
        self.assertIn("reload is ignored in production", o.warnings)
        self.assertTrue(opts(["--reload"]).reload)

    def test_reload_implies_one_worker(self) -> None:
        """§2.20 r12: reload implies one worker."""
        o = opts(["--reload", "--workers", "4"])
        self.assertEqual((o.reload, o.workers), (True, 1))

    def test_reload_off_in_children(self) -> None:
        """§2.20 r12: the reloader's child and cluster workers never start another reloader."""
        self.assertFalse(opts(["--reload"], {"CELLO_TWISTED_RELOADER_CHILD": "1"}).reload)
        self.assertFalse(opts(["--reload"], {"CELLO_TWISTED_WORKER": "0"}).reload)

    def test_tls_flags(self) -> None:
        """§2.20 r3: --tls-cert and --tls-key build a TlsConfig, together only."""
        self.assertEqual(parse_flags(["--tls-cert", "c.pem", "--tls-key", "k.pem"])["tls"], TlsConfig("c.pem", "k.pem"))
        with self.assertRaises(StartupError):
            parse_flags(["--tls-key", "k.pem"])
        self.assertEqual(opts(["--tls-cert", "a", "--tls-key", "b"], tls=TlsConfig("x", "y")).tls, TlsConfig("a", "b"))

    def test_bad_values(self) -> None:
        """§2.20 r5: bad flag values are start-up errors with a one-line reason."""
        for argv, message in (
            (["--port"], "--port needs a value"),
            (["--port", "70000"], "between 0 and 65535"),
            (["--workers", "0"], "at least 1"),
            (["--env", "staging"], "'development' or 'production'"),
            (["--debug=yes"], "takes no value"),
        ):
            with self.assertRaises(StartupError) as caught:
                opts(argv)
            self.assertIn(message, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_unknown_run_argument(self) -> None:
        """§2.20: run() takes only its documented keywords."""
        with self.assertRaises(TypeError):
            opts(wokers=2)
