"""Hostile static-file paths (SPEC §2.16 r7): every traversal spelling is a 404 that leaks nothing."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, StaticFilesConfig

SECRET = b"TOP-SECRET-CONTENT-42"


class TraversalTests(SynchronousTestCase):
    def setUp(self):
        base = tempfile.mkdtemp(prefix="cello-hostile-")
        self.addCleanup(shutil.rmtree, base, True)
        self.root = os.path.join(base, "public")
        os.makedirs(os.path.join(self.root, "sub"))
        with open(os.path.join(base, "secret.txt"), "wb") as fh:
            fh.write(SECRET)
        with open(os.path.join(self.root, "ok.txt"), "wb") as fh:
            fh.write(b"fine")
        with open(os.path.join(self.root, ".env"), "wb") as fh:
            fh.write(SECRET)
        os.makedirs(os.path.join(self.root, ".git"))
        with open(os.path.join(self.root, ".git", "config"), "wb") as fh:
            fh.write(SECRET)
        os.symlink(os.path.join(base, "secret.txt"), os.path.join(self.root, "link.txt"))
        os.symlink(base, os.path.join(self.root, "uplink"))
        os.symlink(os.path.join(self.root, ".env"), os.path.join(self.root, "env-alias"))
        self.app = App(clock=Clock())
        self.app.enable_static_files(StaticFilesConfig("/static", self.root).dir_listing(True))
        self.client = self.app.test_client()

    def assert_refused(self, path, statuses=(404,)):
        r = self.client.get(path)
        self.assertIn(r.status_code, statuses, path)
        self.assertNotIn(SECRET, r.content, path)
        self.assertNotIn(b"TOP-SECRET", r.content, path)
        return r

    def test_traversal_spellings(self):
        """§2.16 r7 (acceptance 3): >= 10 traversal spellings -> 404 with none of the file's bytes."""
        spellings = [
            "/static/../secret.txt",                 # plain (clients normally collapse it; sent raw here)
            "/static/%2e%2e/secret.txt",             # encoded dots
            "/static/%2E%2E/secret.txt",             # upper-case encoding
            "/static/.%2e/secret.txt",               # mixed
            "/static/..%2fsecret.txt",               # encoded slash
            "/static/..%2Fsecret.txt",
            "/static/sub/..%2f..%2fsecret.txt",      # deeper, encoded slashes
            "/static/..%5csecret.txt",               # encoded backslash
            "/static/..\\secret.txt",                # raw backslash
            "/static/sub%2f..%2f..%2fsecret.txt",
            "/static/ok.txt%00.png",                 # NUL
            "/static/%00/../secret.txt",
            "/static/./../secret.txt",
            "/static/sub/../../secret.txt",
            "/static//../secret.txt",                # empty segment
            "/static/%252e%252e/secret.txt",         # double encoding stays a literal name
            "/static/link.txt",                      # symlink pointing outside root
            "/static/uplink/secret.txt",             # symlinked directory outside root
            "/static/%2e%2e%2fsecret.txt",           # fully encoded
        ]
        self.assertGreaterEqual(len(spellings), 10)
        for path in spellings:
            self.assert_refused(path)

    def test_hidden_files(self):
        """§2.16 r7: any segment matching a hide pattern (default leading dot) -> 404, symlinks included."""
        for path in ("/static/.env", "/static/.git/config", "/static/.git/", "/static/env-alias",
                     "/static/%2eenv", "/static/sub/../.env"):
            self.assert_refused(path)

    def test_listing_does_not_escape(self):
        """§2.16 r6/r7: listings of symlinked outside directories are refused too."""
        self.assert_refused("/static/uplink/")

    def test_invalid_utf8(self):
        """§2.16 r7: overlong UTF-8 dot encodings are refused with a 4xx, no content."""
        self.assert_refused("/static/%c0%ae%c0%ae/secret.txt", statuses=(400, 404))

    def test_legit_file_still_served(self):
        """Control: the safe file next to the hostile ones is served (so the 404s above are meaningful)."""
        r = self.client.get("/static/ok.txt")
        self.assertEqual((r.status_code, r.content), (200, b"fine"))
        r = self.client.get("/static/sub/../ok.txt")
        self.assertEqual(r.status_code, 404)  # ".." is refused even when it stays inside

    def test_custom_hide_pattern(self):
        """§2.16 r7: hide_pattern globs hide matching names."""
        with open(os.path.join(self.root, "db.bak"), "wb") as fh:
            fh.write(SECRET)
        app = App(clock=Clock())
        app.enable_static_files(StaticFilesConfig("/static", self.root).hide_pattern("*.bak"))
        r = app.test_client().get("/static/db.bak")
        self.assertEqual(r.status_code, 404)
        self.assertNotIn(SECRET, r.content)
