"""Static files: ``app.enable_static_files(StaticFilesConfig(...))`` and ``Response.file``."""

from .._lazy import lazy_exports

_LAZY = {
    "StaticFilesConfig": "._mount",
    "StaticMount": "._mount",
    "parse_duration": "._mount",
    "file_response": "._mount",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
