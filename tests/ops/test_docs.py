"""The /docs page (SPEC_OPERATIONS §9 r7): Swagger UI from the installed package, served by the app."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, SecurityHeadersConfig


class _References(HTMLParser):
    """Every src/href in a page, and whether any script is written inline."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def app_with_docs(**kwargs: Any) -> App:
    app = App()
    app.get("/items")(lambda request: [])
    app.enable_openapi(**kwargs)
    return app


def references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


class DocsPageTests(SynchronousTestCase):
    def test_page_and_every_asset_served_by_the_app(self) -> None:
        """r7: the page and every asset it references answer 200 from the app; no off-host URL."""
        client = app_with_docs().test_client()
        page = client.get("/docs")
        self.assertEqual(page.status_code, 200)
        self.assertTrue(page.headers.get("content-type").startswith("text/html"))
        found = references(page.text)
        self.assertGreaterEqual(len(found.urls), 4)
        for url in found.urls:
            parts = urlsplit(url)
            self.assertEqual((parts.scheme, parts.netloc), ("", ""), url)  # same host, same scheme
            self.assertTrue(url.startswith("/docs/"), url)
            asset = client.get(url)
            self.assertEqual(asset.status_code, 200, url)
            self.assertGreater(len(asset.content), 0, url)
        kinds = {url.rsplit(".", 1)[-1]: client.get(url).headers.get("content-type") for url in found.urls}
        self.assertTrue(kinds["css"].startswith("text/css"))
        self.assertTrue(kinds["js"].startswith("text/javascript"))
        self.assertEqual(kinds["png"], "image/png")

    def test_swagger_ui_is_version_5_and_calls_nowhere(self) -> None:
        """The bundle is Swagger UI 5 (renders OpenAPI 3.1); the initializer loads our document and
        turns the online validator off, so the page makes no off-host request."""
        client = app_with_docs().test_client()
        scripts = [u for u in references(client.get("/docs").text).urls if u.endswith(".js")]
        bundle = next(u for u in scripts if "swagger-ui-bundle" in u)
        self.assertRegex(client.get(bundle).text, r'"5\.\d+\.\d+"')
        init = client.get(next(u for u in scripts if "swagger-ui-bundle" not in u)).text
        self.assertIn('url: "/openapi.json"', init)
        self.assertIn("validatorUrl: null", init)
        self.assertIsNone(re.search(r"https?://", init))
        css = client.get("/docs/swagger-ui.css").text
        css_urls = [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", css)]
        self.assertEqual([u for u in css_urls if not u.startswith("data:")], [])  # all inline data

    def test_no_inline_script_so_strict_csp_works(self) -> None:
        """The page runs no inline script: script-src 'self' (seed 000's CSP) still shows the docs."""
        app = app_with_docs()
        app.enable_security_headers(SecurityHeadersConfig(csp="default-src 'self'; script-src 'self'"))
        page = app.test_client().get("/docs")
        self.assertEqual(references(page.text).inline_scripts, 0)
        self.assertIn("script-src 'self'", page.headers.get("content-security-policy"))

    def test_custom_paths(self) -> None:
        """Assets follow docs_path; the initializer follows path."""
        client = app_with_docs(path="/v1/spec.json", docs_path="/reference").test_client()
        urls = references(client.get("/reference").text).urls
        self.assertTrue(all(u.startswith("/reference/") for u in urls), urls)
        init = next(u for u in urls if u.endswith(".js") and "bundle" not in u)
        self.assertIn('url: "/v1/spec.json"', client.get(init).text)

    def test_unknown_asset_is_404(self) -> None:
        """Only the page's own assets are served: other names (and traversal) → 404 JSON."""
        client = app_with_docs().test_client()
        for path in ("/docs/nope.js", "/docs/../openapi.json/x", "/docs/%2e%2e/%2e%2e/etc/passwd", "/docs/index.html"):
            response = client.get(path)
            self.assertEqual(response.status_code, 404, path)
            self.assertEqual(response.json()["status"], 404)

    def test_docs_path_none(self) -> None:
        """r7: docs_path=None serves no page and no assets; the document still answers."""
        client = app_with_docs(docs_path=None).test_client()
        self.assertEqual(client.get("/docs").status_code, 404)
        self.assertEqual(client.get("/docs/swagger-ui.css").status_code, 404)
        self.assertEqual(client.get("/openapi.json").status_code, 200)

    def test_without_swagger_ui_names_the_extra(self) -> None:
        """Without swagger-ui-py installed, enable_openapi raises ImportError naming [openapi];
        with docs_path=None it is not needed."""
        with mock.patch("cello_twisted.ops._docs.importlib.util.find_spec", return_value=None):
            with self.assertRaises(ImportError) as caught:
                App().enable_openapi()
            self.assertIn("pip install 'cello-twisted[openapi]'", str(caught.exception))
            App().enable_openapi(docs_path=None)
