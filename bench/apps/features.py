"""Feature servers for bench/suites_features.py: `python features.py MODE PORT`.

cello modes: plain, jwt, session, ratelimit, static, gzip, typed (POST /echo with ``body=``),
metrics (app.enable_metrics), request-id (app.enable_request_id).
raw twisted.web modes: raw-plain, raw-jwt (PyJWT decode per request), raw-static, raw-gzip.
"""

import dataclasses
import gzip
import os
import sys

SECRET = b"bench-secret-0123456789-abcdefghijklmnop"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


@dataclasses.dataclass
class Nested:
    ok: bool


@dataclasses.dataclass
class Item:
    """The body bench/post.lua sends."""

    name: str
    tags: list[str]
    count: int
    nested: Nested


BIG = {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(150)]}


def cello(mode):
    from cello_twisted import App, JwtConfig, RateLimitConfig, SessionConfig, StaticFilesConfig
    from cello_twisted.middleware import JwtAuth

    app = App()
    if mode == "jwt":
        app.use(JwtAuth(JwtConfig(secret=SECRET, algorithm="HS256")))
    elif mode == "session":
        app.enable_sessions(SessionConfig(secret=SECRET, secure=False))
    elif mode == "ratelimit":
        app.enable_rate_limit(RateLimitConfig(requests=10**9, window=60))
    elif mode == "ratelimit-bucket":
        app.enable_rate_limit(RateLimitConfig.token_bucket(requests=10**9, window=60))
    elif mode == "static":
        app.enable_static_files(StaticFilesConfig("/static", STATIC_DIR))
    elif mode == "gzip":
        app.enable_compression()
    elif mode == "metrics":
        app.enable_metrics()
    elif mode == "request-id":
        app.enable_request_id()

    @app.get("/")
    def hello(request):
        return {"message": "Hello, World!"}

    @app.get("/me")
    def me(request):
        return {"sub": request.context["jwt_claims"]["sub"]}

    @app.get("/visits")
    def visits(request):
        count = request.session.get("visits", 0) + 1
        request.session["visits"] = count
        return {"visits": count}

    @app.get("/big")
    def big(request):
        return BIG

    if mode == "typed":

        @app.post("/echo", body=Item)
        def echo_typed(request):
            item = request.validated
            return {"name": item.name, "count": item.count, "ok": item.nested.ok}

    else:

        @app.post("/echo")
        def echo_json(request):
            data = request.json()
            return {"name": data["name"], "count": data["count"], "ok": data["nested"]["ok"]}

    app.env, app.debug = "production", False
    return app.site()


def raw(mode):
    import jwt
    from raw_twisted import (  # the same raw baseline as run.py's core suite
        Hello,
        Request,
        Site,
        json_body,
    )
    from twisted.web import static
    from twisted.web.resource import Resource

    class Me(Resource):
        isLeaf = True

        def render_GET(self, request):
            header = request.getHeader(b"authorization") or b""
            try:
                claims = jwt.decode(header[7:].decode(), SECRET, algorithms=["HS256"])
            except (jwt.InvalidTokenError, UnicodeDecodeError):
                request.setResponseCode(401)
                return json_body(request, {"error": "Unauthorized"})
            return json_body(request, {"sub": claims["sub"]})

    class Big(Resource):
        isLeaf = True

        def render_GET(self, request):
            body = json_body(request, BIG)
            if b"gzip" in (request.getHeader(b"accept-encoding") or b""):
                request.setHeader(b"content-encoding", b"gzip")
                request.setHeader(b"vary", b"Accept-Encoding")
                return gzip.compress(body, 6)
            return body

    root = Resource()
    root.putChild(b"", Hello())
    root.putChild(b"me", Me())
    root.putChild(b"big", Big())
    root.putChild(b"static", static.File(STATIC_DIR))
    return Site(root, requestFactory=Request)


if __name__ == "__main__":
    from twisted.internet import reactor

    mode, port = sys.argv[1], int(sys.argv[2])
    site = raw(mode) if mode.startswith("raw") else cello(mode)
    reactor.listenTCP(port, site, interface="127.0.0.1", backlog=1024)
    reactor.run()
