"""Static files (SPEC §2.16) and file responses (SPEC §2.3 r5)."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import time
from email.utils import formatdate

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, CorsConfig, HTTPError, RateLimitConfig, Response, StaticFilesConfig
from cello_twisted.static import StaticMount, parse_duration


def make_tree(test):
    root = tempfile.mkdtemp(prefix="cello-static-")
    test.addCleanup(shutil.rmtree, root, True)
    files = {
        "index.html": b"<h1>home</h1>",
        "app.js": b"console.log(1)",
        "mod.mjs": b"export default 1",
        "style.css": b"body{}",
        "notes.txt": b"notes",
        "data.json": b"{}",
        "app.js.map": b"{}",
        "code.wasm": b"\0asm\1\0\0\0",
        "logo.svg": b"<svg/>",
        "font.woff2": b"wOF2",
        "photo.png": b"\x89PNG",
        "blob.unknownext": b"??",
        "digits.bin": bytes(range(10)) * 10,
        "empty.txt": b"",
        "docs/guide.html": b"guide",
        "docs/.secret": b"hidden",
        "docs/sub/deep.txt": b"deep",
        "nodex/a.txt": b"a",
        "nodex/.hidden.txt": b"h",
        ".env": b"SECRET=1",
        "big.txt": b"0123456789" * 30000,
    }
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    return root


def static_app(test, config=None, **kwargs):
    root = make_tree(test)
    app = App(clock=Clock())
    app.enable_static_files(config(root) if config else StaticFilesConfig("/static", root, **kwargs))
    return app, root


class ConfigTests(SynchronousTestCase):
    def test_aliases_and_chain(self):
        """§2.16: prefix=/directory=/index_file= aliases; chainable methods return a changed copy of the (frozen) config."""
        root = make_tree(self)
        config = StaticFilesConfig(prefix="/assets", directory=root, index_file="main.html")
        self.assertEqual((config.url_path, config.root_dir, config.index_file), ("/assets", root, "main.html"))
        chained = config.cache_str("30d").etag(False).dir_listing(True).index("i.html").precompressed(False)
        chained = chained.header("X-A", "1").hide_pattern("*.bak")
        self.assertIsInstance(chained, StaticFilesConfig)
        self.assertEqual((chained.url_path, chained.root_dir), ("/assets", root))
        self.assertEqual(chained.cache_max_age, 30 * 86400)
        self.assertEqual((chained.etag_enabled, chained.dir_listing_enabled, chained.precompressed_enabled), (False, True, False))
        self.assertEqual(chained.index_file, "i.html")
        self.assertIsNone(chained.no_index().index_file)
        self.assertEqual(chained.extra_headers, {"X-A": "1"})
        self.assertEqual(chained.hide_patterns, (".*", "*.bak"))
        # the original is untouched
        self.assertEqual((config.cache_max_age, config.etag_enabled, config.index_file), (86400, True, "main.html"))
        self.assertEqual((config.extra_headers, config.hide_patterns), ({}, (".*",)))

    def test_cache_str_units(self):
        """§2.16 r3: cache_str units s/m/h/d/w/y."""
        self.assertEqual([parse_duration(v) for v in ("45s", "10m", "2h", "1d", "1w", "1y")],
                         [45, 600, 7200, 86400, 604800, 31536000])

    def test_errors(self):
        """§2.16 errors: missing/non-directory root, url_path without '/', malformed cache_str."""
        root = make_tree(self)
        app = App()
        with self.assertRaises(ValueError):
            app.enable_static_files(StaticFilesConfig("/s", os.path.join(root, "missing")))
        with self.assertRaises(ValueError):
            app.enable_static_files(StaticFilesConfig("/s", os.path.join(root, "notes.txt")))
        with self.assertRaises(ValueError):
            app.enable_static_files(StaticFilesConfig("static", root))
        for bad in ("30", "d", "3x", "-1d", "1.5h"):
            with self.assertRaises(ValueError):
                app.enable_static_files(StaticFilesConfig("/s", root).cache_str(bad))
        self.assertEqual(app.static_mounts, [])
        self.assertIsInstance(app.enable_static_files(StaticFilesConfig("/s", root)), StaticMount)


class ServingTests(SynchronousTestCase):
    def test_types(self):
        """§2.16 r2 / seed 000: types from cello's own table, .wasm and .mjs included."""
        app, _ = static_app(self)
        client = app.test_client()
        expected = {
            "index.html": "text/html; charset=utf-8",
            "app.js": "text/javascript; charset=utf-8",
            "mod.mjs": "text/javascript; charset=utf-8",
            "style.css": "text/css; charset=utf-8",
            "notes.txt": "text/plain; charset=utf-8",
            "data.json": "application/json",
            "app.js.map": "application/json",
            "code.wasm": "application/wasm",
            "logo.svg": "image/svg+xml",
            "font.woff2": "font/woff2",
            "photo.png": "image/png",
            "blob.unknownext": "application/octet-stream",
        }
        for name, ctype in expected.items():
            r = client.get("/static/" + name)
            self.assertEqual((r.status_code, r.headers["Content-Type"]), (200, ctype), name)
        self.assertEqual(client.get("/static/code.wasm").content, b"\0asm\1\0\0\0")

    def test_routes_win_and_longest_mount_first(self):
        """§2.16 r1: routes win over mounts; mounts are tried longest url_path first."""
        root = make_tree(self)
        app = App(clock=Clock())
        app.enable_static_files(StaticFilesConfig("/", root))
        app.enable_static_files(StaticFilesConfig("/static/docs", os.path.join(root, "nodex")))
        app.get("/notes.txt")(lambda request: "route")
        client = app.test_client()
        self.assertEqual(client.get("/notes.txt").text, "route")
        self.assertEqual(client.get("/app.js").content, b"console.log(1)")
        self.assertEqual(client.get("/static/docs/a.txt").text, "a")
        self.assertEqual(client.get("/").text, "<h1>home</h1>")

    def test_through_middleware_chain(self):
        """§2.16 r1: static responses pass through the app middleware chain."""
        app, _ = static_app(self)
        app.enable_cors(CorsConfig(origins=["https://a.example"]))
        app.enable_rate_limit(RateLimitConfig(2, 60))
        client = app.test_client()
        r = client.get("/static/notes.txt", headers={"Origin": "https://a.example"})
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "https://a.example")
        self.assertEqual(r.headers["X-RateLimit-Limit"], "2")
        client.get("/static/notes.txt")
        self.assertEqual(client.get("/static/notes.txt").status_code, 429)

    def test_methods(self):
        """§2.16 r1: only GET/HEAD; others -> 405 with Allow: GET, HEAD."""
        app, _ = static_app(self)
        client = app.test_client()
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            r = client.request(method, "/static/notes.txt")
            self.assertEqual((r.status_code, r.headers.get("Allow")), (405, "GET, HEAD"), method)
        r = client.head("/static/notes.txt")
        self.assertEqual((r.status_code, r.content, r.headers["Content-Length"]), (200, b"", "5"))
        self.assertEqual(client.post("/static/missing.txt").status_code, 404)

    def test_cache_control(self):
        """§2.16 r3: Cache-Control public max-age; "0s" -> no-cache."""
        app, _ = static_app(self)
        self.assertEqual(app.test_client().get("/static/app.js").headers["Cache-Control"], "public, max-age=86400")
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).cache_str("2h"))
        self.assertEqual(app.test_client().get("/static/app.js").headers["Cache-Control"], "public, max-age=7200")
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).cache_str("0s"))
        self.assertEqual(app.test_client().get("/static/app.js").headers["Cache-Control"], "no-cache")

    def test_extra_headers(self):
        """§2.16: headers= / .header() are added to every static response."""
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).header("X-Frame", "1"))
        self.assertEqual(app.test_client().get("/static/app.js").headers["X-Frame"], "1")


class ConditionalTests(SynchronousTestCase):
    def test_etag_and_last_modified(self):
        """§2.16 r4: ETag "<mtime-hex>-<size-hex>" and Last-Modified."""
        app, root = static_app(self)
        st = os.stat(os.path.join(root, "notes.txt"))
        r = app.test_client().get("/static/notes.txt")
        self.assertEqual(r.headers["ETag"], f'"{int(st.st_mtime):x}-{st.st_size:x}"')
        self.assertEqual(r.headers["Last-Modified"], formatdate(st.st_mtime, usegmt=True))

    def test_if_none_match_304(self):
        """§2.16 r4: matching If-None-Match -> 304 without a body; a different one -> 200."""
        app, _ = static_app(self)
        client = app.test_client()
        etag = client.get("/static/notes.txt").headers["ETag"]
        for value in (etag, f'"zzz", {etag}', "*", "W/" + etag):
            r = client.get("/static/notes.txt", headers={"If-None-Match": value})
            self.assertEqual((r.status_code, r.content), (304, b""), value)
            self.assertEqual(r.headers["ETag"], etag)
        self.assertEqual(client.get("/static/notes.txt", headers={"If-None-Match": '"other"'}).status_code, 200)

    def test_if_modified_since(self):
        """§2.16 r4: If-Modified-Since >= mtime -> 304; older -> 200."""
        app, _ = static_app(self)
        client = app.test_client()
        later = formatdate(time.time() + 3600, usegmt=True)
        self.assertEqual(client.get("/static/notes.txt", headers={"If-Modified-Since": later}).status_code, 304)
        self.assertEqual(client.get("/static/notes.txt", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code, 200)
        self.assertEqual(client.get("/static/notes.txt", headers={"If-Modified-Since": "garbage"}).status_code, 200)

    def test_etag_disabled(self):
        """§2.16 r4: etag(False) sends no ETag and ignores If-None-Match."""
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).etag(False))
        r = app.test_client().get("/static/notes.txt", headers={"If-None-Match": "*"})
        self.assertEqual(r.status_code, 200)
        self.assertNotIn("ETag", r.headers)


class RangeTests(SynchronousTestCase):
    def test_ranges(self):
        """§2.16 r4 + §2.3 r5: one range -> 206 + Content-Range; suffix and open ranges."""
        app, _ = static_app(self)
        client = app.test_client()
        data = bytes(range(10)) * 10
        for header, start, end in (("bytes=0-9", 0, 9), ("bytes=95-", 95, 99), ("bytes=-5", 95, 99), ("bytes=90-500", 90, 99)):
            r = client.get("/static/digits.bin", headers={"Range": header})
            self.assertEqual(r.status_code, 206, header)
            self.assertEqual(r.content, data[start:end + 1])
            self.assertEqual(r.headers["Content-Range"], f"bytes {start}-{end}/100")
            self.assertEqual(r.headers["Accept-Ranges"], "bytes")

    def test_unsatisfiable(self):
        """§2.3 r5: an unsatisfiable range -> 416 with Content-Range bytes */size."""
        app, _ = static_app(self)
        client = app.test_client()
        for header in ("bytes=100-", "bytes=500-600", "bytes=-0"):
            r = client.get("/static/digits.bin", headers={"Range": header})
            self.assertEqual(r.status_code, 416, header)
            self.assertEqual(r.headers["Content-Range"], "bytes */100")
            self.assertEqual(r.json()["status"], 416)

    def test_ignored_ranges(self):
        """§2.3 r5: malformed or multiple ranges are ignored -> full 200."""
        app, _ = static_app(self)
        client = app.test_client()
        for header in ("bytes=5-1", "items=0-1", "bytes=0-1,4-5", "bytes=x-y"):
            r = client.get("/static/digits.bin", headers={"Range": header})
            self.assertEqual((r.status_code, len(r.content)), (200, 100), header)

    def test_large_file_streams(self):
        """§2.3 r5: files above the one-write threshold stream completely; ranges inside them work."""
        app, _ = static_app(self)
        client = app.test_client()
        r = client.get("/static/big.txt")
        self.assertEqual(r.content, b"0123456789" * 30000)
        r = client.get("/static/big.txt", headers={"Range": "bytes=100000-200004"})
        self.assertEqual(r.content, (b"0123456789" * 30000)[100000:200005])


class PrecompressedTests(SynchronousTestCase):
    def setUp(self):
        self.app, root = static_app(self)
        self.original = b"body { color: red }" * 50
        with open(os.path.join(root, "site.css"), "wb") as fh:
            fh.write(self.original)
        with open(os.path.join(root, "site.css.gz"), "wb") as fh:
            fh.write(gzip.compress(self.original))
        with open(os.path.join(root, "site.css.br"), "wb") as fh:
            fh.write(b"BROTLI-BYTES")
        self.client = self.app.test_client()

    def test_br_first(self):
        """§2.16 r5: .br sent when accepted (br first), Content-Encoding, original type, Vary."""
        r = self.client.get("/static/site.css", headers={"Accept-Encoding": "gzip, br"})
        self.assertEqual((r.content, r.headers["Content-Encoding"]), (b"BROTLI-BYTES", "br"))
        self.assertEqual(r.headers["Content-Type"], "text/css; charset=utf-8")
        self.assertIn("Accept-Encoding", r.headers["Vary"])

    def test_gz(self):
        """§2.16 r5: .gz when only gzip is accepted."""
        r = self.client.get("/static/site.css", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.headers["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(r.content), self.original)

    def test_identity(self):
        """§2.16 r5: without an accepted coding the original is sent, still with Vary."""
        r = self.client.get("/static/site.css", headers={"Accept-Encoding": "br;q=0, gzip;q=0"})
        self.assertEqual(r.content, self.original)
        self.assertNotIn("Content-Encoding", r.headers)
        self.assertIn("Accept-Encoding", r.headers["Vary"])

    def test_disabled(self):
        """§2.16 r5: precompressed(False) ignores the variants."""
        root = self.app.static_mounts[0].config.root_dir
        app = App(clock=Clock())
        app.enable_static_files(StaticFilesConfig("/static", root).precompressed(False))
        r = app.test_client().get("/static/site.css", headers={"Accept-Encoding": "br"})
        self.assertEqual(r.content, self.original)


class DirectoryTests(SynchronousTestCase):
    def test_redirect_to_slash(self):
        """§2.16 r6: a directory without a slash -> 301 to the slash form (query kept)."""
        app, _ = static_app(self)
        r = app.test_client().get("/static/docs?x=1")
        self.assertEqual((r.status_code, r.headers["Location"]), (301, "/static/docs/?x=1"))

    def test_index(self):
        """§2.16 r6: with a slash -> index file."""
        app, root = static_app(self)
        with open(os.path.join(root, "docs", "index.html"), "w") as fh:
            fh.write("docs index")
        self.assertEqual(app.test_client().get("/static/docs/").text, "docs index")

    def test_no_listing_by_default(self):
        """§2.16 r6: no index and no dir_listing -> 404."""
        app, _ = static_app(self)
        self.assertEqual(app.test_client().get("/static/nodex/").status_code, 404)

    def test_listing_hides_hidden(self):
        """§2.16 r6: dir_listing -> HTML listing without hidden entries."""
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).dir_listing(True))
        r = app.test_client().get("/static/docs/")
        self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
        self.assertIn('href="guide.html"', r.text)
        self.assertIn('href="sub/"', r.text)
        self.assertNotIn(".secret", r.text)

    def test_no_index_option(self):
        """§2.16: no_index() disables the index file."""
        app, _ = static_app(self, lambda root: StaticFilesConfig("/static", root).no_index())
        self.assertEqual(app.test_client().get("/static/").status_code, 404)


class FileResponseTests(SynchronousTestCase):
    def setUp(self):
        self.root = make_tree(self)
        self.app = App(clock=Clock())
        root = self.root
        self.app.get("/download")(lambda request: Response.file(os.path.join(root, "notes.txt")))
        self.app.get("/named")(lambda request: Response.file(os.path.join(root, "digits.bin"), filename='re"port\u00e9.bin'))
        self.app.get("/inline")(lambda request: Response.sendfile(os.path.join(root, "code.wasm")))
        self.app.get("/typed")(lambda request: Response.sendfile(os.path.join(root, "notes.txt"), content_type="text/x-note"))
        self.app.get("/missing")(lambda request: Response.file(os.path.join(root, "nope")))
        self.app.get("/dir")(lambda request: Response.sendfile(root))
        self.client = self.app.test_client()

    def test_file_attachment(self):
        """§2.3 r5: file() streams with Content-Disposition attachment and Accept-Ranges."""
        r = self.client.get("/download")
        self.assertEqual((r.status_code, r.text), (200, "notes"))
        self.assertEqual(r.headers["Content-Disposition"], 'attachment; filename="notes.txt"')
        self.assertEqual(r.headers["Accept-Ranges"], "bytes")
        self.assertEqual(r.headers["Content-Type"], "text/plain; charset=utf-8")

    def test_filename_quoted(self):
        """§2.3 r5: the given filename is used, quoted safely (RFC 5987 for non-ASCII)."""
        value = self.client.get("/named").headers["Content-Disposition"]
        self.assertTrue(value.startswith('attachment; filename="re\\"port?.bin"'), value)
        self.assertIn("filename*=UTF-8''re%22port%C3%A9.bin", value)

    def test_sendfile_inline(self):
        """§2.3 r5 / §2.3 r1: sendfile() has no Content-Disposition; type by extension or given."""
        r = self.client.get("/inline")
        self.assertNotIn("Content-Disposition", r.headers)
        self.assertEqual(r.headers["Content-Type"], "application/wasm")
        self.assertEqual(self.client.get("/typed").headers["Content-Type"], "text/x-note")

    def test_ranges(self):
        """§2.3 r5: Range on file responses -> 206 / 416."""
        r = self.client.get("/named", headers={"Range": "bytes=2-3"})
        self.assertEqual((r.status_code, r.content, r.headers["Content-Range"]), (206, b"\x02\x03", "bytes 2-3/100"))
        self.assertEqual(self.client.get("/named", headers={"Range": "bytes=200-"}).status_code, 416)

    def test_missing_is_404(self):
        """§2.3 r5: a missing or non-regular file -> the factory raises HTTPError(404)."""
        self.assertEqual(self.client.get("/missing").status_code, 404)
        self.assertEqual(self.client.get("/dir").status_code, 404)
        with self.assertRaises(HTTPError) as caught:
            Response.file(os.path.join(self.root, "nope"))
        self.assertEqual(caught.exception.status, 404)

    def test_head(self):
        """§2.1 r5: HEAD of a file response -> same headers, Content-Length, no body."""
        r = self.client.head("/download")
        self.assertEqual((r.status_code, r.content, r.headers["Content-Length"]), (200, b"", "5"))
