"""Endpoint strings for ``twistd cello --listen``: checks, TLS floor, and cluster sockets (SPEC §2.21 r3, r5)."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from ._tls import TlsConfig, certificate_options


class EndpointError(ValueError):
    """A ``--listen`` value that cannot be used; the message is for the usage error."""


@frozen
class ListenSpec:
    """One ``--listen`` value; ``kind`` is the endpoint type ("tcp", "ssl", "unix", ...)."""

    description: str
    kind: str
    port: int | None = None
    interface: str = ""
    backlog: int = 1024
    tls: TlsConfig | None = None


def parse_listen(description: str, default_backlog: int = 1024) -> ListenSpec:
    """Parse ``tcp:``/``ssl:`` descriptions fully; other kinds are checked when listening.

    ``default_backlog`` applies when the description has no ``backlog=`` (twistd ``--backlog``).
    """
    from twisted.internet.endpoints import _parse  # the parser serverFromString uses

    try:
        args, kwargs = _parse(description)
    except Exception as e:
        raise EndpointError(f"bad endpoint {description!r}: {e}") from None
    if not args or not args[0]:
        raise EndpointError(f"bad endpoint {description!r}: no endpoint type")
    kind = args[0].lower()
    if kind not in ("tcp", "ssl"):
        try:
            return ListenSpec(description, kind, backlog=int(kwargs.get("backlog", default_backlog)))
        except ValueError:
            raise EndpointError(f"bad endpoint {description!r}: backlog must be an integer") from None
    port_text = args[1] if len(args) > 1 else kwargs.get("port")
    if port_text is None:
        raise EndpointError(f"bad endpoint {description!r}: no port")
    try:
        port = int(port_text)
        backlog = int(kwargs.get("backlog", default_backlog))
    except ValueError:
        raise EndpointError(f"bad endpoint {description!r}: port and backlog must be integers") from None
    if not 0 <= port <= 65535:
        raise EndpointError(f"bad endpoint {description!r}: port out of range")
    tls = None
    if kind == "ssl":
        key = kwargs.get("privateKey")
        if not key:
            raise EndpointError(f"bad endpoint {description!r}: ssl needs privateKey=")
        tls = TlsConfig(kwargs.get("certKey") or key, key)
    return ListenSpec(description, kind, port, kwargs.get("interface", ""), backlog, tls)


def check_listen(spec: ListenSpec, reactor: Any) -> None:
    """Build the endpoint once so a typo is a usage error, not a traceback at start."""
    from ._tls import TlsError

    if spec.tls is not None:
        try:
            certificate_options(spec.tls)
        except TlsError as e:
            raise EndpointError(str(e)) from None
        return
    if spec.kind == "tcp":
        return
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, spec.description)
    except Exception as e:
        raise EndpointError(f"bad endpoint {spec.description!r}: {e}") from None


def make_endpoint(spec: ListenSpec, reactor: Any) -> Any:
    """tcp:/ssl: get Cello's own endpoints (TLS ≥ 1.2 floor); others go to serverFromString."""
    from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint

    if spec.kind == "ssl":
        options = certificate_options(spec.tls)  # type: ignore[arg-type]
        return SSL4ServerEndpoint(reactor, spec.port, options, backlog=spec.backlog, interface=spec.interface)
    if spec.kind == "tcp":
        return TCP4ServerEndpoint(reactor, spec.port, backlog=spec.backlog, interface=spec.interface)
    return endpoint_from_string(reactor, spec.description, spec.backlog)


_BACKLOG_KINDS = ("tcp", "tcp6", "ssl", "unix")


def endpoint_from_string(reactor: Any, description: str, backlog: int) -> Any:
    """``serverFromString``, with ``backlog`` added where the kind takes one and none is given
    (Twisted's default of 50 makes a burst of connects wait for SYN retries)."""
    from twisted.internet.endpoints import serverFromString

    kind = description.split(":", 1)[0].lower()
    if kind in _BACKLOG_KINDS and "backlog=" not in description:
        description = f"{description}:backlog={backlog}"
    return serverFromString(reactor, description)
