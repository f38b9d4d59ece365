"""Forms and uploads (SPEC §2.17): urlencoded, multipart, spooling, base names, malformed bodies."""

from __future__ import annotations

import os
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, FormData, UploadedFile
from cello_twisted.forms import SPOOL_THRESHOLD, base_name


def form_app():
    app = App(clock=Clock())
    seen: dict = {}

    @app.post("/form")
    def form(request):
        data = request.form()
        seen["form"] = data
        seen["files"] = request.files()
        return {"fields": dict(data), "files": [f.filename for f in request.files()]}

    @app.post("/async")
    async def async_form(request):
        data = await request.form()
        files = await request.files()
        return {"fields": dict(data), "count": len(files), "same": data is request.form()}

    return app, seen


class UrlencodedTests(SynchronousTestCase):
    def test_fields(self):
        """§2.17 r1: urlencoded bodies -> FormData (first value per field, get_all for repeats)."""
        app, seen = form_app()
        r = app.test_client().post("/form", data={"name": "Ada", "tag": ["a", "b"], "empty": ""})
        self.assertEqual(r.json()["fields"], {"name": "Ada", "tag": "a", "empty": ""})
        form = seen["form"]
        self.assertIsInstance(form, FormData)
        self.assertEqual(form.get_all("tag"), ["a", "b"])
        self.assertEqual(form.get_or("missing", "dflt"), "dflt")
        self.assertTrue(form.has_field("name"))
        self.assertEqual((form.field_names(), form.field_count()), (["name", "tag", "empty"], 3))
        self.assertEqual((form.file_count(), form.file_names(), form.get_file("x")), (0, [], None))

    def test_bad_encoding(self):
        """§2.2 r1 / §2.17: undecodable urlencoded bodies -> 400."""
        app, _ = form_app()
        r = app.test_client().post("/form", data=b"name=%ff%fe", headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status_code, 400)

    def test_other_types_empty(self):
        """§2.17 r1: other content types -> an empty FormData."""
        app, _ = form_app()
        r = app.test_client().post("/form", json={"a": 1})
        self.assertEqual(r.json(), {"fields": {}, "files": []})

    def test_awaitable(self):
        """§2.17: request.form() and request.files() results may also be awaited."""
        app, _ = form_app()
        r = app.test_client().post("/async", data={"a": "1"}, files={"f": ("x.txt", b"x", "text/plain")})
        self.assertEqual(r.json(), {"fields": {"a": "1"}, "count": 1, "same": True})


class MultipartTests(SynchronousTestCase):
    def test_fields_and_files(self):
        """§2.17 r1/r2: multipart fields and files; files only via the file methods, in body order."""
        app, seen = form_app()
        files = {"doc": [("a.TXT", b"alpha", "text/plain"), ("b.bin", b"\0\1", None)], "pic": ("p.png", b"\x89PNG", "image/png")}
        r = app.test_client().post("/form", data={"title": "hi", "n": ["1", "2"]}, files=files)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json(), {"fields": {"title": "hi", "n": "1"}, "files": ["a.TXT", "b.bin", "p.png"]})
        form = seen["form"]
        self.assertNotIn("doc", form)
        self.assertEqual(form.get_all("n"), ["1", "2"])
        self.assertEqual((form.file_count(), form.file_names()), (3, ["doc", "pic"]))
        self.assertTrue(form.has_file("pic") and not form.has_file("title"))
        first = form.get_file("doc")
        self.assertIsInstance(first, UploadedFile)
        self.assertEqual([f.filename for f in form.get_files("doc")], ["a.TXT", "b.bin"])
        self.assertEqual((first.name, first.content_type, first.size(), first.read(), first.read_text()),
                         ("doc", "text/plain", 5, b"alpha", "alpha"))
        self.assertEqual(first.extension(), "txt")
        self.assertIsNone(first.temp_path)
        self.assertEqual(form.get_files("doc")[1].content_type, "application/octet-stream")
        self.assertEqual([f.name for f in seen["files"]], ["doc", "doc", "pic"])

    def test_save(self):
        """§2.17: UploadedFile.save(path) writes the content."""
        app, seen = form_app()
        app.test_client().post("/form", files={"f": ("s.txt", b"saved", "text/plain")})
        target = os.path.join(tempfile.mkdtemp(), "out.txt")
        self.addCleanup(os.remove, target)
        seen["form"].get_file("f").save(target)
        with open(target, "rb") as fh:
            self.assertEqual(fh.read(), b"saved")

    def test_large_file_spooled(self):
        """§2.17 r2: files over 1 MiB are spooled to disk (temp_path), removed after the request."""
        app, seen = form_app()
        payload = os.urandom(SPOOL_THRESHOLD + 4096)
        r = app.test_client().post("/form", files={"big": ("big.bin", payload, "application/octet-stream")})
        self.assertEqual(r.status_code, 200)
        upload = seen["form"].get_file("big")
        self.assertIsNotNone(upload.temp_path)
        self.assertEqual(upload.size(), len(payload))
        self.assertFalse(os.path.exists(upload.temp_path))  # cleaned up once the response finished

    def test_spooled_content_readable_during_request(self):
        """§2.17 r2: a spooled file reads back intact inside the handler."""
        app = App(clock=Clock())
        payload = os.urandom(SPOOL_THRESHOLD * 2)

        @app.post("/check")
        def check(request):
            upload = request.form().get_file("f")
            return {"ok": upload.read() == payload, "on_disk": os.path.exists(upload.temp_path)}

        r = app.test_client().post("/check", files={"f": ("f.bin", payload)})
        self.assertEqual(r.json(), {"ok": True, "on_disk": True})

    def test_filenames_reduced_to_base_name(self):
        """§2.17 r2: client paths are reduced to the base name (/, \\ and NUL)."""
        self.assertEqual(base_name("../../etc/passwd"), "passwd")
        self.assertEqual(base_name("C:\\Users\\x\\report.PDF"), "report.PDF")
        self.assertEqual(base_name("a\0b.txt"), "ab.txt")
        self.assertEqual(base_name(".."), "")
        app, seen = form_app()
        app.test_client().post("/form", files={"f": ("..\\..\\win.ini", b"x"), "g": ("/abs/path/a.tar.GZ", b"y")})
        self.assertEqual([f.filename for f in seen["files"]], ["win.ini", "a.tar.GZ"])
        self.assertEqual(seen["files"][1].extension(), "gz")

    def test_extension_none(self):
        """§2.17 r2: extension() is None without an extension."""
        app, seen = form_app()
        app.test_client().post("/form", files={"f": ("README", b"x")})
        self.assertIsNone(seen["files"][0].extension())


class MalformedTests(SynchronousTestCase):
    def post(self, body: bytes, content_type: str):
        app, _ = form_app()
        return app.test_client().post("/form", data=body, headers={"Content-Type": content_type})

    def test_malformed_multipart_400(self):
        """§2.17 r4 (acceptance 3): missing/invalid boundary or unparsable multipart -> 400, never 500."""
        cases = [
            (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data"),
            (b"anything", "multipart/form-data; boundary="),
            (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
            (b"no boundary here at all", "multipart/form-data; boundary=b"),
            (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated", "multipart/form-data; boundary=b"),
            (b"--b\r\n" + b"X-Long: " + b"h" * 10000 + b"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
            (b"", "multipart/form-data; boundary=b"),
            (b"x", "multipart/form-data; boundary=" + "b" * 100),
        ]
        for body, content_type in cases:
            r = self.post(body, content_type)
            self.assertEqual(r.status_code, 400, (body[:40], content_type))
            self.assertEqual(r.json()["status"], 400)

    def test_undecodable_field_400(self):
        """§2.17 r4: a text field that is not valid in its charset -> 400."""
        body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n--b--\r\n"
        self.assertEqual(self.post(body, "multipart/form-data; boundary=b").status_code, 400)

    def test_valid_handwritten(self):
        """§2.17 r1: a well-formed hand-written body parses (control for the cases above)."""
        body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--b--\r\n"
        r = self.post(body, "multipart/form-data; boundary=b")
        self.assertEqual(r.json(), {"fields": {"a": "value"}, "files": []})


class BodyLimitTests(SynchronousTestCase):
    def test_over_limit_413(self):
        """§2.17 r3: a body over the limit -> 413 with the standard body; the handler is not called."""
        app = App(clock=Clock())
        app.enable_body_limit(max_size=100)
        calls = []

        @app.post("/in")
        def accept(request):
            calls.append(1)
            return "ok"

        client = app.test_client()
        r = client.post("/in", data=b"x" * 101)
        self.assertEqual((r.status_code, r.json()["status"]), (413, 413))
        self.assertEqual(client.post("/in", data=b"x" * 100).status_code, 200)
        self.assertEqual(calls, [1])

    def test_default_limit(self):
        """§2.17 r3: the default limit is 10 MiB."""
        self.assertEqual(App().max_body_size, 10 * 1024 * 1024)
