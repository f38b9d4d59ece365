"""app.listen(): serve inside a reactor someone else runs (SPEC §2.22 r3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint

    from ._lifecycle import ServedApp


def listen(app: ServedApp, endpoint: IStreamServerEndpoint | str, reactor: Any = None) -> Deferred[IListeningPort]:
    """Startup hooks and lifespan once (first call), then listen; lifespan exit and shutdown hooks once before reactor shutdown."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    if isinstance(endpoint, str):
        from twisted.internet.endpoints import serverFromString

        server_endpoint: IStreamServerEndpoint = serverFromString(reactor, endpoint)
    else:
        server_endpoint = endpoint
    lifecycle = app.lifecycle
    if not lifecycle.shutdown_registered:
        lifecycle.shutdown_registered = True
        reactor.addSystemEventTrigger("before", "shutdown", lifecycle.end)  # lifespan exit, shutdown hooks
    startup = lifecycle.startup_once(app)

    def listen_now(_: object) -> Deferred[IListeningPort]:
        lifecycle.started = True
        return server_endpoint.listen(app.site())

    return startup.wait().addCallback(listen_now)
