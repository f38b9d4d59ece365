"""Feature benchmarks (JWT, sessions, rate limit, static, gzip); loaded by bench/run.py."""
# `register` and `APPS` are provided by run.py.

import time

import jwt as _pyjwt

_SECRET = b"bench-secret-0123456789-abcdefghijklmnop"
_TOKEN = _pyjwt.encode({"sub": "user-1", "exp": int(time.time()) + 86400}, _SECRET, algorithm="HS256")
_AUTH = [f"Authorization: Bearer {_TOKEN}"]
_FEATURES = str(APPS / "features.py")  # noqa: F821

register(  # noqa: F821
    "features",
    [
        ("calibration: the plain app vs a second copy of itself", "cello-plain", "cello-plain-2", "/", None, []),
        ("JWT route vs own unprotected GET", "cello-plain", "cello-jwt", "/|/me", None, _AUTH),
        ("raw: PyJWT per request vs unprotected", "raw-plain", "raw-jwt", "/|/me", None, _AUTH),
        ("session read+write vs own plain GET", "cello-plain", "cello-session", "/|/visits", "session.lua", []),
        ("rate-limited (sliding window) vs same route unlimited", "cello-plain", "cello-ratelimit", "/", None, []),
        ("rate-limited (token bucket) vs same route unlimited", "cello-plain", "cello-ratelimit-bucket", "/", None, []),
        ("static 4 KB file", "raw-static", "cello-static", "/static/page.css", None, []),
        ("gzip 10 KB JSON", "raw-gzip", "cello-gzip", "/big", None, ["Accept-Encoding: gzip"]),
        ("metrics on (Prometheus counters + histogram) vs same route unmetered", "cello-plain", "cello-metrics", "/", None, []),
        ("request IDs on vs off", "cello-plain", "cello-request-id", "/", None, []),
        ("typed-body POST (body=dataclass) vs same POST reading request.json()", "cello-plain", "cello-typed", "/echo", "post.lua", []),
    ],
    {
        name: [_FEATURES, mode]
        for name, mode in [
            ("cello-plain", "plain"),
            ("cello-plain-2", "plain"),
            ("cello-jwt", "jwt"),
            ("cello-session", "session"),
            ("cello-ratelimit", "ratelimit"),
            ("cello-ratelimit-bucket", "ratelimit-bucket"),
            ("cello-static", "static"),
            ("cello-gzip", "gzip"),
            ("cello-typed", "typed"),
            ("cello-metrics", "metrics"),
            ("cello-request-id", "request-id"),
            ("raw-plain", "raw-plain"),
            ("raw-jwt", "raw-jwt"),
            ("raw-static", "raw-static"),
            ("raw-gzip", "raw-gzip"),
        ]
    },
)
