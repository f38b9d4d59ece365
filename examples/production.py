"""A production-style app: lifespan, health and readiness, Prometheus metrics, request IDs, JSON logs.

    pip install 'cello-twisted[metrics]'
    python examples/production.py --env production --workers 2 --log-format json
    twistd -n cello --app examples/production.py --listen tcp:8000 --log-format json --logs

Then: curl -i localhost:8000/health/ready; curl localhost:8000/metrics; curl -i localhost:8000/orders/7
Set REDIS_URL (redis://127.0.0.1:6379/0) to share rate limits through Redis and check it in /ready.
See docs/operations.md.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

from cello_twisted import App, HTTPError, RateLimitConfig


class Inventory:
    """Stands in for a database pool: opened by the lifespan, closed after the last request."""

    def __init__(self) -> None:
        self.items = {7: {"id": 7, "name": "teapot", "stock": 3}}
        self.open = True

    async def ping(self) -> bool:
        return self.open  # a real pool would run "SELECT 1" here

    async def close(self) -> None:
        self.open = False


@asynccontextmanager
async def lifespan(app: App) -> Any:
    inventory = Inventory()
    yield {"inventory": inventory}  # request.app.state.inventory while serving
    await inventory.close()


app = App(lifespan=lifespan)
app.enable_request_id()  # X-Request-ID in, out, in error bodies and in every access-log line
app.enable_metrics()  # GET /metrics; per-worker samples summed in cluster mode

checks: dict[str, Any] = {"inventory": lambda: app.state.inventory.ping()}
limits = RateLimitConfig(requests=100, window=60)
redis_url = os.environ.get("REDIS_URL")
if redis_url:
    from cello_twisted.stores import RedisRateLimitStore

    store = RedisRateLimitStore(url=redis_url, timeout=0.5)
    limits = RateLimitConfig(requests=100, window=60, store=store)
    checks["redis"] = store.health_check
app.enable_rate_limit(limits)
# /health/live and /health/ready; on SIGTERM /ready answers 503 for 5 s before the server stops accepting.
app.enable_health(checks=checks, timeout=1.0, drain_delay=float(os.environ.get("DRAIN_DELAY", "5")))


@app.get("/orders/{id:int}")
def order(request: Any) -> dict[str, Any]:
    item = request.app.state.inventory.items.get(int(request.params["id"]))
    if item is None:
        raise HTTPError(404, "no such order")  # the body carries "request_id"
    return {"order": item, "request_id": request.id}


if __name__ == "__main__":
    app.run(env="production", workers=1)
