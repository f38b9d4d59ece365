"""Peer and layer benchmarks; loaded by bench/run.py.

suite "peer": cello_twisted (default layer: llhttp via httptools) vs Starlette on uvicorn
(uvloop + httptools; bench-only packages, see README), and vs cello on Twisted's own parser.
suite "layers": cello_twisted's fast layer vs raw twisted.web (stock HTTPChannel) and vs
cello_twisted on the stock (hardened) channel.
"""
# `register` and `APPS` are provided by run.py.

import importlib.util

_CELLO = str(APPS / "cello_app.py")  # noqa: F821

_rows = [
    ("GET / : cello fast layer vs raw twisted.web", "raw", "cello", "/", None, []),
    ("GET / : cello fast layer vs cello stock channel", "cello-stock", "cello", "/", None, []),
    ("GET /users/{id} : cello fast layer vs cello stock channel", "cello-stock", "cello", "/users/42", None, []),
    ("POST /echo : cello fast layer vs cello stock channel", "cello-stock", "cello", "/echo", "post.lua", []),
]
register("layers", _rows, {"cello-stock": [_CELLO, "twisted"]})  # noqa: F821

if importlib.util.find_spec("uvicorn") and importlib.util.find_spec("starlette"):
    register(  # noqa: F821
        "peer",
        [
            ("GET / vs Starlette+uvicorn", "starlette", "cello", "/", None, []),
            ("GET /users/{id} vs Starlette+uvicorn", "starlette", "cello", "/users/42", None, []),
            ("POST /echo vs Starlette+uvicorn", "starlette", "cello", "/echo", "post.lua", []),
        ],
        {"starlette": [str(APPS / "starlette_app.py")]},  # noqa: F821
    )
