"""Resolving app.run() settings: command-line flag > run() argument > default (SPEC §2.20 r1-r3)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from ._limits import DEFAULT_LIMITS, HTTP_PARSERS, LIMIT_NAMES, ConnectionLimits
from ._tls import TlsConfig

ENVS = ("development", "production")
WORKER_ENV = "CELLO_TWISTED_WORKER"
LISTEN_FD_ENV = "CELLO_TWISTED_LISTEN_FD"
RELOADER_CHILD_ENV = "CELLO_TWISTED_RELOADER_CHILD"

_RUN_KWARGS = (
    "debug", "env", "workers", "reload", "logs", "tls", "http2", "graceful_timeout", "log_format", *LIMIT_NAMES,
)
_SECONDS_FLAGS = ("--header-timeout", "--body-timeout", "--keep-alive-timeout")
_COUNT_FLAGS = ("--max-header-count", "--max-header-bytes", "--backlog")
_VALUED = (
    "--host", "--port", "--workers", "--env", "--tls-cert", "--tls-key", "--log-format",
    "--http-parser", *_SECONDS_FLAGS, *_COUNT_FLAGS,
)
LOG_FORMATS = ("text", "json")
_SWITCHES = ("--debug", "--reload", "--no-logs")


class StartupError(Exception):
    """A start-up failure reported as one stderr line and exit status 1 (SPEC §2.20 r5)."""


@frozen
class ServeOptions:
    """The settings app.run() serves with, resolved once (flags > run() arguments > defaults)."""

    host: str
    port: int
    env: str
    debug: bool
    workers: int
    reload: bool
    logs: bool
    tls: TlsConfig | None
    http2: bool | None
    graceful_timeout: float
    warnings: tuple[str, ...]
    log_format: str = "text"
    limits: ConnectionLimits = DEFAULT_LIMITS


def parse_flags(argv: Sequence[str]) -> dict[str, Any]:
    """The §2.20 flags found in ``argv``; anything else is ignored.

    Raises:
        StartupError: a known flag without a value or with a bad one.
    """
    found: dict[str, Any] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, eq, inline = arg.partition("=")
        if name in _SWITCHES:
            if eq:
                raise StartupError(f"flag {name} takes no value")
            key = {"--debug": "debug", "--reload": "reload", "--no-logs": "logs"}[name]
            found[key] = name != "--no-logs"
            continue
        if name not in _VALUED:
            continue
        if eq:
            value = inline
        elif i < len(args):
            value = args[i]
            i += 1
        else:
            raise StartupError(f"flag {name} needs a value")
        found[name[2:].replace("-", "_")] = _convert(name, value)
    if ("tls_cert" in found) != ("tls_key" in found):
        raise StartupError("--tls-cert and --tls-key must be given together")
    if "tls_cert" in found:
        found["tls"] = TlsConfig(found.pop("tls_cert"), found.pop("tls_key"))
    return found


def _convert(name: str, value: str) -> Any:
    if name == "--port":
        port = _int(name, value)
        if not 0 <= port <= 65535:
            raise StartupError(f"--port must be between 0 and 65535, got {value!r}")
        return port
    if name == "--workers":
        workers = _int(name, value)
        if workers < 1:
            raise StartupError(f"--workers must be at least 1, got {value!r}")
        return workers
    if name == "--log-format" and value not in LOG_FORMATS:
        raise StartupError(f"--log-format must be 'text' or 'json', got {value!r}")
    if name in _SECONDS_FLAGS:
        try:
            seconds = float(value)
        except ValueError:
            raise StartupError(f"{name} needs a number of seconds, got {value!r}") from None
        if not seconds > 0:
            raise StartupError(f"{name} must be > 0, got {value!r}")
        return seconds
    if name in _COUNT_FLAGS:
        count = _int(name, value)
        if count < 1:
            raise StartupError(f"{name} must be at least 1, got {value!r}")
        return count
    if name == "--http-parser" and value not in HTTP_PARSERS:
        raise StartupError(f"--http-parser must be 'httptools' or 'twisted', got {value!r}")
    if name == "--env" and value not in ENVS:
        raise StartupError(f"--env must be 'development' or 'production', got {value!r}")
    if not value:
        raise StartupError(f"flag {name} needs a value")
    return value


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise StartupError(f"{name} needs an integer, got {value!r}") from None


def resolve(
    host: str, port: int, kwargs: dict[str, Any], argv: Sequence[str], environ: Any = None
) -> ServeOptions:
    """Merge flags, run() arguments and defaults into one ServeOptions."""
    unknown = set(kwargs) - set(_RUN_KWARGS)
    if unknown:
        raise TypeError(f"run() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    environ = os.environ if environ is None else environ
    flags = parse_flags(argv)
    given = {k: v for k, v in kwargs.items() if v is not None}
    given.setdefault("host", host)
    given.setdefault("port", port)
    merged = {**given, **flags}
    env = merged.get("env", "development")
    if env not in ENVS:
        raise StartupError(f"env must be 'development' or 'production', got {env!r}")
    debug = bool(merged.get("debug", env == "development"))
    logs = bool(merged.get("logs", debug))
    warnings: list[str] = []
    reload = bool(merged.get("reload", False))
    if reload and env == "production":
        warnings.append("reload is ignored in production")
        reload = False
    workers = merged.get("workers")
    if workers is None:
        workers = 1 if (env == "development" or debug) else (os.cpu_count() or 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise StartupError(f"workers must be an integer >= 1, got {workers!r}")
    if reload and workers > 1:
        warnings.append("reload implies one worker")
        workers = 1
    port_value = merged["port"]
    if not isinstance(port_value, int) or not 0 <= port_value <= 65535:
        raise StartupError(f"port must be an integer between 0 and 65535, got {port_value!r}")
    tls = merged.get("tls")
    if tls is not None and not isinstance(tls, TlsConfig):
        raise StartupError("tls must be a TlsConfig(cert_path, key_path)")
    timeout = merged.get("graceful_timeout", 30)
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise StartupError(f"graceful_timeout must be a number >= 0, got {timeout!r}")
    log_format = merged.get("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise StartupError(f"log_format must be 'text' or 'json', got {log_format!r}")
    if environ.get(RELOADER_CHILD_ENV) or environ.get(WORKER_ENV) is not None:
        reload = False
    try:
        limits = ConnectionLimits(**{k: merged[k] for k in LIMIT_NAMES if k in merged})
    except (ValueError, TypeError) as e:
        raise StartupError(str(e)) from None
    return ServeOptions(
        host=str(merged["host"]),
        port=port_value,
        env=env,
        debug=debug,
        workers=workers,
        reload=reload,
        logs=logs,
        tls=tls,
        http2=merged.get("http2"),
        graceful_timeout=float(timeout),
        warnings=tuple(warnings),
        log_format=log_format,
        limits=limits,
    )
