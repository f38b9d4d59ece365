"""The ``/docs`` page: Swagger UI from the installed ``swagger-ui-py`` package's own files.

Everything the page loads is served by the app under ``{docs_path}/``: the page has no
inline script (so ``Content-Security-Policy: script-src 'self'`` keeps working), no CDN
and no call home (Swagger UI's online validator badge is turned off).
"""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HTTPError
from ..response import Response

if TYPE_CHECKING:
    from ..request import Request

_OPENAPI_EXTRA = "pip install 'cello-twisted[openapi]'"

#: The files of the Swagger UI distribution the page uses, with their content types.
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
INIT_SCRIPT = "cello-swagger-init.js"  # made here: points Swagger UI at the document

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{base}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/{init}"></script>
</body>
</html>
"""

_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def swagger_ui_dir() -> Path:
    """The installed distribution's folder, found without importing the package."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the /docs page needs swagger-ui-py: {_OPENAPI_EXTRA}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise ImportError(f"swagger-ui-py at {folder} lacks {missing}: {_OPENAPI_EXTRA}")
    return folder


class DocsPage:
    """Serves the page at ``docs_path`` and its assets below it."""

    def __init__(self, docs_path: str, openapi_path: str, title: str) -> None:
        self.docs_path = docs_path.rstrip("/") or "/"
        self.openapi_path = openapi_path
        self.title = title
        self.folder = swagger_ui_dir()
        self._files: dict[str, bytes] = {}

    def _base(self, request: Request) -> str:
        return request.root_path + ("" if self.docs_path == "/" else self.docs_path)

    def page(self, request: Request) -> Response:
        text = _PAGE.format(
            title=html.escape(self.title),
            base=html.escape(self._base(request)),
            init=INIT_SCRIPT,
        )
        response = Response.html(text)
        response.set_header("Cache-Control", "no-cache")
        return response

    def asset(self, request: Request) -> Response:
        name = request.params.get("asset", "")
        if name == INIT_SCRIPT:
            script = _INIT % json.dumps(request.root_path + self.openapi_path)
            response = Response(script.encode("utf-8"), 200, None, "text/javascript; charset=utf-8")
            response.set_header("Cache-Control", "no-cache")
            return response
        content_type = ASSETS.get(name)
        if content_type is None:
            raise HTTPError(404, extra={"path": request.path})
        data = self._files.get(name)
        if data is None:
            data = self._files[name] = (self.folder / name).read_bytes()
        response = Response(data, 200, None, content_type)
        response.set_header("Cache-Control", "public, max-age=86400")
        return response
