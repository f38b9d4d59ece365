"""Finding the App named by ``--app``: a ``.py`` path or ``package.module[:attr]`` (SPEC §2.21 r2)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from typing import Any


class AppNotFound(Exception):
    """The ``--app`` value names nothing usable; the message is for the usage error."""


def _module_name_for(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name = re.sub(r"\W", "_", stem) or "app"
    return name if not name[0].isdigit() else f"_{name}"


def _load_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise AppNotFound(f"no such file: {path}")
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = _module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppNotFound(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # __name__ is not "__main__", so its main block does not run
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return module


def _load_module(name: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise AppNotFound(f"no module named {name!r}") from None
        raise


def load_app(target: str) -> Any:
    """Import ``target`` and return its App (calling a factory attribute if needed).

    Raises:
        AppNotFound: file, module or attribute missing, or not an App.
    """
    from ..app import App

    location, attr = target, "app"
    head, sep, tail = target.rpartition(":")
    if sep and head and not re.fullmatch(r"[A-Za-z]", head):  # keep "C:\..." paths whole
        location, attr = head, tail
    if not attr:
        raise AppNotFound(f"empty attribute name in {target!r}")
    if location.endswith(".py") or os.sep in location:
        module = _load_file(location)
    else:
        module = _load_module(location)
    if not hasattr(module, attr):
        raise AppNotFound(f"{location} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if not isinstance(obj, App) and callable(obj):
        obj = obj()
    if not isinstance(obj, App):
        raise AppNotFound(f"{location}:{attr} is a {type(obj).__name__}, not a cello_twisted App")
    return obj
