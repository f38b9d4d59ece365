"""Redis URLs: one parsed description of where Redis is (single, Unix socket, Sentinel, Cluster).

Parsing happens once, when a store is built, so a bad URL is a ``ValueError`` at start-up
and no request pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

_SCHEMES = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("unix", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_CERT_REQS = ("required", "none")
_OPTIONS = {"db", "password", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"}


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is and how to talk to it (from a URL)."""

    kind: str  # "single" | "unix" | "sentinel" | "cluster"
    hosts: tuple[tuple[str, int], ...] = ()
    path: str = ""  # unix socket
    service: str = ""  # sentinel master name
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    verify: bool = True  # ssl_cert_reqs=required (default) vs none
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


def parse_url(url: str) -> RedisTarget:
    """Parse ``url``; any URL the stores cannot use is a ValueError naming what is wrong."""
    if not isinstance(url, str):
        raise ValueError(f"Redis URL must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            "Redis URL must start with redis://, rediss://, unix://, redis+sentinel:// "
            f"or redis+cluster://, not {url!r}"
        )
    kind, tls = _SCHEMES[scheme.lower()]
    rest, _, query = rest.partition("?")
    options = _options(query)
    if kind == "unix":
        return _unix(rest, options)
    netloc, _, path = rest.partition("/")
    creds, at, hostpart = netloc.rpartition("@")
    username, password = _credentials(creds) if at else (None, None)
    password = options.get("password", password)
    hosts = tuple(_host_port(item) for item in hostpart.split(","))
    parts = [unquote(p) for p in path.split("/") if p]
    service, db = "", 0
    if kind == "sentinel":
        if not parts:
            raise ValueError("redis+sentinel:// URL needs a service name: .../service_name[/db]")
        service, parts = parts[0], parts[1:]
    if kind == "single" and len(hosts) != 1:
        raise ValueError("redis:// URL names exactly one host; use redis+sentinel:// or redis+cluster://")
    if len(parts) > 1 or (kind == "cluster" and parts):
        raise ValueError(f"unexpected path in Redis URL: /{path}")
    db = _db(parts[0] if parts else options.get("db", "0"))
    if kind == "cluster" and db:
        raise ValueError("Redis Cluster has only database 0")
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be 'required' or 'none', not {cert_reqs!r}")
    return RedisTarget(
        kind,
        hosts,
        "",
        service,
        db,
        username,
        password,
        tls,
        cert_reqs == "required",
        options.get("ssl_ca_certs"),
        options.get("ssl_certfile"),
        options.get("ssl_keyfile"),
    )


def _options(query: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - _OPTIONS)
    if unknown:
        raise ValueError(f"unknown Redis URL option(s): {', '.join(unknown)}")
    return {k: v[-1] for k, v in parsed.items()}


def _unix(rest: str, options: dict[str, str]) -> RedisTarget:
    creds, at, path = rest.rpartition("@")
    username, password = _credentials(creds) if at else (None, None)
    if not path.startswith("/"):
        raise ValueError("unix:// URL needs an absolute socket path: unix:///run/redis.sock")
    return RedisTarget(
        "unix",
        path=unquote(path),
        db=_db(options.get("db", "0")),
        username=username,
        password=options.get("password", password),
    )


def _credentials(creds: str) -> tuple[str | None, str | None]:
    user, colon, password = creds.partition(":")
    if not colon:
        return None, unquote(user) or None  # redis://secret@host: a bare password
    return unquote(user) or None, unquote(password)


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:6379
        host, _, port = item[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise ValueError(f"Redis URL has an empty host in {item!r}")
    try:
        number = int(port) if port else 6379
    except ValueError:
        raise ValueError(f"Redis URL has a bad port in {item!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"Redis URL port out of range in {item!r}")
    return host, number


def _db(text: str) -> int:
    try:
        db = int(text)
    except ValueError:
        raise ValueError(f"Redis database must be a number, not {text!r}") from None
    if db < 0:
        raise ValueError("Redis database must not be negative")
    return db


def safe_url(url: str) -> str:
    """``url`` without its password, for logs and reprs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.partition("/")[0]:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in creds else '***'}@{host}"


def sync_client(target: RedisTarget, timeout: float) -> Any:
    """A redis-py client for ``target`` (used when no reactor runs, e.g. synchronous tests).

    redis-py's own retries are off: back-off is the backend's job.
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("running without a reactor needs redis-py: pip install redis") from exc
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "username": target.username,
        "password": target.password,
    }
    tls: dict[str, Any] = {}
    if target.tls:
        tls = {
            "ssl": True,
            "ssl_cert_reqs": "required" if target.verify else "none",
            "ssl_check_hostname": target.verify,
            "ssl_ca_certs": target.ca_certs,
            "ssl_certfile": target.certfile,
            "ssl_keyfile": target.keyfile,
        }
    if target.kind == "unix":
        return redis.Redis(unix_socket_path=target.path, db=target.db, **common)
    if target.kind == "single":
        host, port = target.hosts[0]
        return redis.Redis(host=host, port=port, db=target.db, **common, **tls)
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.hosts), socket_timeout=timeout, socket_connect_timeout=timeout, **tls
        )
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, **common, **tls
        )
    from redis.cluster import ClusterNode, RedisCluster

    common.pop("retry")
    return RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],  # type: ignore[no-untyped-call]
        cluster_error_retry_attempts=0,
        **common,
        **tls,
    )
