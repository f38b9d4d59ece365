"""No cello_twisted module reads or writes another module's private (``_name``) attributes.

What one module needs from another is handed over through a public name, so each module can
change its insides alone. Checked on the source with ``ast``:

- ``x._name`` where ``x`` is not ``self``/``cls`` and no class or function of the same module
  defines ``_name`` (a ``self._name = ...``, a ``__slots__`` entry, a def or an assignment);
- ``from module import _name`` where ``_name`` is a value, not a private module of the package.

``getattr(x, "_name")`` is not seen (nothing uses it today). Third-party private attributes
that the code deliberately relies on are listed in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import ast

from twisted.trial.unittest import SynchronousTestCase

from tests._support.package_source import PACKAGE_DIR, Module, modules, resolve_relative

# (module prefix, expression) -> why this read of a private attribute is allowed.
ALLOWED: dict[tuple[str, str], str] = {
    ("cello_twisted.wire.", "._rawHeaders"): (
        "Twisted's Headers map: the fast header path writes it directly and wire/_headers.py "
        "falls back to setRawHeaders if a Twisted release changes it"
    ),
    ("cello_twisted.ops.request_id", "._rawHeaders"): (
        "Twisted's Headers map: default request IDs are read and placed by the Request subclass's "
        "constructor, with no call (every request pays it); only when wire._headers' probe passed "
        "(DIRECT_WRITES), the link through header_relay otherwise"
    ),
    ("cello_twisted.", "os._exit"): "os._exit is the documented way to leave a forked/failed child at once",
    ("cello_twisted.websocket.", "factory._batched_timer"): (
        "autobahn's factory reads its auto-ping timer from this attribute and has no public setter; "
        "the server points it at the app's clock so pings follow task.Clock in tests"
    ),
    ("cello_twisted.testing.", "factory._batched_timer"): "the same autobahn timer, for the test client's peer",
    ("cello_twisted.server._channel", "headers._rawHeaders"): (
        "Twisted's Headers map: the channel's Host/Transfer-Encoding checks read it with two dict lookups "
        "per request, and fall back to getRawHeaders when a Twisted release changes it (_DIRECT)"
    ),
    ("cello_twisted.server._fast_channel", "._rawHeaders"): (
        "Twisted's Headers map: the fast channel writes parsed request headers and Server/Date straight "
        "into it; probed at import (_DIRECT), addRawHeader/setRawHeaders otherwise"
    ),
    ("cello_twisted.server._fast_channel", "transport._tempDataLen"): (
        "Twisted's TCP write buffer: a response goes straight to the socket only when nothing is queued there"
    ),
    ("cello_twisted.server._fast_channel", "transport._writeDisconnected"): (
        "Twisted's TCP transport: no direct send after a half-close, as FileDescriptor.write checks"
    ),
    ("cello_twisted.server._channel", "old._networkProducer"): (
        "Twisted's HTTPChannel keeps the transport's producer here and has no public accessor; the "
        "H1->H2 switch re-registers it exactly as Twisted's own _GenericHTTPChannelProtocol does"
    ),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_here(module: Module) -> set[str]:
    """Names this module itself defines: defs, assignments, arguments, self attributes, slots."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names.update(
                c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return names


def _allowed(module: Module, expression: str) -> bool:
    return any(
        module.name.startswith(prefix) and expression.endswith(suffix) for prefix, suffix in ALLOWED
    )


def foreign_private_uses(scan: list[Module], module_names: set[str]) -> list[str]:
    """``path:line: expression`` for every private name a module in ``scan`` takes from elsewhere."""
    found: list[str] = []
    for module in scan:
        own = _defined_here(module)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                    continue
                expression = ast.unparse(node)
                if node.attr in own or _allowed(module, expression):
                    continue
                found.append(f"{module.relpath}:{node.lineno}: {expression}")
            elif isinstance(node, ast.ImportFrom):
                base_name = resolve_relative(module, node.level, node.module)
                for alias in node.names:
                    is_module = f"{base_name}.{alias.name}" in module_names
                    if _private(alias.name) and not is_module and base_name.startswith("cello_twisted"):
                        found.append(f"{module.relpath}:{node.lineno}: from {base_name} import {alias.name}")
    return sorted(found)


class PrivateAccessTests(SynchronousTestCase):
    def test_no_module_uses_another_modules_private_names(self) -> None:
        """Issue 11: what a module needs from another (the app's clock, finalizers, limiters,
        a response's headers) is a public name; no `x._name` reaches into another module."""
        known = modules()
        found = foreign_private_uses(list(known.values()), set(known))
        if found:
            self.fail(f"{len(found)} private names used across modules:\n  " + "\n  ".join(found))

    def test_checker_flags_foreign_reads_and_private_imports_only(self) -> None:
        """A planted module: reading `request.app._clock` and importing `_helper` are flagged;
        `self._x`, a private attribute the module defines, and a private module import are not."""
        source = (
            "from ._json import dumps\n"
            "from . import _json\n"
            "from .other import _helper\n"
            "class Box:\n"
            "    __slots__ = ('_slot',)\n"
            "    def __init__(self):\n"
            "        self._mine = 1\n"
            "def peek(box, request):\n"
            "    return box._mine, box._slot, str(request.app._clock)\n"
        )
        planted = Module(
            "cello_twisted.planted", PACKAGE_DIR / "planted.py", False, ast.parse(source), tuple(source.splitlines())
        )
        found = foreign_private_uses([planted], {"cello_twisted._json", "cello_twisted.other"})
        self.assertEqual(
            [line.split(": ", 1)[1] for line in found],
            ["from cello_twisted.other import _helper", "request.app._clock"],
        )
