"""app.listen(): serve inside a reactor someone else runs (SPEC §2.22 r3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint

    from ._lifecycle import ServedApp
    from ._site import CelloSite


def build_site(app: ServedApp, site_kwargs: dict[str, Any]) -> CelloSite:
    """``app.site(**kw)``: a CelloSite with the app's body limit, load shedding and clock.

    Raises:
        ConfigError: a connection limit with a bad value.
    """
    from ._limits import split_limits
    from ._site import CelloSite

    limits, rest = split_limits(site_kwargs)
    return CelloSite(
        app.resource(),
        max_body_size=app.max_body_size,
        limits=limits,
        max_concurrent_requests=app.max_concurrent_requests,
        clock=rest.get("reactor") or app.clock,  # an explicit reactor= (the test client's) drives the timers
        **rest,
    )


def listen(
    app: ServedApp, endpoint: IStreamServerEndpoint | str, reactor: Any = None, **site_kwargs: Any
) -> Deferred[IListeningPort]:
    """Startup hooks and lifespan once (first call), then listen; lifespan exit and shutdown hooks once before reactor shutdown.

    ``site_kwargs`` are app.site()'s; an endpoint string without ``backlog=`` gets ``backlog``.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    site = build_site(app, site_kwargs)
    if isinstance(endpoint, str):
        from ._twistd_endpoints import endpoint_from_string

        server_endpoint: IStreamServerEndpoint = endpoint_from_string(reactor, endpoint, site.backlog)
    else:
        server_endpoint = endpoint
    lifecycle = app.lifecycle
    if not lifecycle.shutdown_registered:
        lifecycle.shutdown_registered = True
        reactor.addSystemEventTrigger("before", "shutdown", lifecycle.end)  # lifespan exit, shutdown hooks
    startup = lifecycle.startup_once(app)

    def listen_now(_: object) -> Deferred[IListeningPort]:
        lifecycle.started = True
        return server_endpoint.listen(site)

    return startup.wait().addCallback(listen_now)
