"""Twisted resources inside a cello_twisted app: ``python examples/mounts.py`` serves http://127.0.0.1:8000.

- ``POST /login`` returns a demo token; ``/reports/...`` serves examples/public with
  ``static.File``, only with ``Authorization: Bearer <token>``.
- ``/legacy/...`` is a Flask app through ``WSGIResource`` (when Flask is installed),
  under the app's rate limit and security headers.
- ``/api/v1/...`` is proxied to ``UPSTREAM`` (``host:port``, default ``127.0.0.1:9000``).
- ``/downloads/{*rest}`` is a route returning ``static.File``: Twisted serves the rest of the path.
"""

import os

from twisted.internet import reactor
from twisted.web.proxy import ReverseProxyResource
from twisted.web.static import File
from twisted.web.wsgi import WSGIResource

from cello_twisted import App, Authenticated, JwtConfig, RateLimitConfig

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC = os.path.join(HERE, "public")

app = App()
app.enable_security_headers()
app.enable_rate_limit(RateLimitConfig(requests=100, window=60))
app.enable_jwt(JwtConfig(secret=os.environ.get("JWT_SECRET", "demo-secret-change-me-0123456789abcdef")))


@app.post("/login")
def login(request):
    # A demo: real apps check a password first.
    return {"access_token": app.jwt.create_token({"sub": "demo"})}


# 1. A directory behind JWT: no valid token, no file (401 from the guard).
app.mount("/reports", File(PUBLIC), guards=[Authenticated()])


# 2. A Flask app under /legacy: SCRIPT_NAME="/legacy", PATH_INFO = the rest.
try:
    from flask import Flask
except ImportError:  # Flask is optional for this example
    Flask = None

if Flask is not None:
    legacy = Flask("legacy")

    @legacy.route("/hello")
    def legacy_hello():
        return {"from": "flask"}

    app.mount("/legacy", WSGIResource(reactor, reactor.getThreadPool(), legacy))


# 3. A reverse proxy: /api/v1/users?x=1 → http://UPSTREAM/users?x=1
host, _, port = os.environ.get("UPSTREAM", "127.0.0.1:9000").partition(":")
app.mount("/api/v1", ReverseProxyResource(host, int(port or 80), b""))


# 4. A route handing the rest of the path to a resource (Klein's "branch" routes).
@app.get("/downloads/{*rest}")
def downloads(request):
    return File(PUBLIC)


@app.get("/")
def index(request):
    return {"routes": app.get_all_routes()}


if __name__ == "__main__":
    app.run()
