"""Prometheus metrics (SPEC_OPERATIONS §7): series, labels bounded by the route table, cluster sums."""

from __future__ import annotations

import os
import re
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from cello_twisted import (
    App,
    Blueprint,
    CsrfConfig,
    HTTPError,
    JwtConfig,
    RateLimitConfig,
    Response,
    SseStream,
    StaticFilesConfig,
)
from cello_twisted.errors import ConfigError
from cello_twisted.middleware import Csrf
from cello_twisted.stores import RedisRateLimitStore
from tests._support.processes import PYTHON, alive, get, spawn, tempdir, wait_until, write_app
from tests.middleware.test_timeout import Wire

SECRET = "m" * 40


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in exposition ``text``, keyed by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text, name).get(tuple(sorted(labels.items())), 0.0)


def metered_app(**kwargs: Any) -> App:
    app = App()
    app.enable_metrics(registry=CollectorRegistry(), **kwargs)
    return app


class SeriesTests(SynchronousTestCase):
    def test_counts_and_histograms_per_route_template(self) -> None:
        """r1-r2: requests count per (method, route template, status); the histogram per (method, route)."""
        app = metered_app()
        app.get("/users/{id}")(lambda r: {"id": r.params["id"]})
        app.post("/users")(lambda r: ({"ok": True}, 201))
        client = app.test_client()
        for i in range(5):
            client.get(f"/users/{i}")
        client.post("/users")
        scrape = client.get("/metrics")
        self.assertEqual(scrape.status_code, 200)
        self.assertEqual(scrape.headers.get("Content-Type"), "text/plain; version=1.0.0; charset=utf-8")
        text = scrape.text
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/users/{id}", status="200"), 5)
        self.assertEqual(value(text, "cello_requests_total", method="POST", route="/users", status="201"), 1)
        self.assertEqual(value(text, "cello_request_duration_seconds_count", method="GET", route="/users/{id}"), 5)
        self.assertEqual(value(text, "cello_request_duration_seconds_bucket", method="GET", route="/users/{id}", le="+Inf"), 5)
        self.assertEqual(value(text, "cello_requests_in_progress", method="GET"), 0)
        routes = {dict(k)["route"] for k in samples(text, "cello_requests_total")}
        self.assertEqual(routes, {"/users/{id}", "/users"})  # /metrics itself is not counted

    def test_a_thousand_404_paths_make_one_series(self) -> None:
        """r2: 1,000 distinct unmatched paths → one "<unmatched>" series; unknown methods fold into OTHER."""
        app = metered_app()
        app.get("/known")(lambda r: "ok")
        client = app.test_client()
        for i in range(1000):
            client.get(f"/random/{i}/x{i * 7}")
        for method in ("FOO", "BAR", "PURGE"):
            client.request(method, "/nowhere")
        text = client.get("/metrics").text
        series = samples(text, "cello_requests_total")
        self.assertEqual(
            series,
            {
                (("method", "GET"), ("route", "<unmatched>"), ("status", "404")): 1000.0,
                (("method", "OTHER"), ("route", "<unmatched>"), ("status", "404")): 3.0,
            },
        )
        histograms = {dict(k)["route"] for k in samples(text, "cello_request_duration_seconds_count")}
        self.assertEqual(histograms, {"<unmatched>", "/known"})  # /known bound (at zero) when compiled

    def test_405_carries_its_path_template(self) -> None:
        """r2: a 405 is labelled with the template of the path it hit."""
        app = metered_app()
        app.get("/items/{id}")(lambda r: "ok")
        client = app.test_client()
        client.delete("/items/9")
        text = client.get("/metrics").text
        self.assertEqual(value(text, "cello_requests_total", method="DELETE", route="/items/{id}", status="405"), 1)

    def test_static_mount_responses_are_one_static_series(self) -> None:
        """r2: every response of a static mount, its 404s included, is route="<static>"."""
        root = tempdir(self)
        with open(os.path.join(root, "app.js"), "w") as f:
            f.write("console.log(1)")
        app = metered_app()
        app.enable_static_files(StaticFilesConfig("/assets", root))
        client = app.test_client()
        self.assertEqual(client.get("/assets/app.js").status_code, 200)
        self.assertEqual(client.get("/assets/missing-1.js").status_code, 404)
        self.assertEqual(client.get("/assets/missing-2.js").status_code, 404)
        client.get("/elsewhere")
        text = client.get("/metrics").text
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="<static>", status="200"), 1)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="<static>", status="404"), 2)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="<unmatched>", status="404"), 1)

    def test_a_routes_chain_counts_each_method_under_its_own_label(self) -> None:
        """r2: a GET route's chain also serves HEAD; each is counted under its own method, with the
        route's template, and a slow response lands in its bucket, not the first."""
        clock_values = iter([0.0, 0.002, 10.0, 10.3, 20.0, 20.001])  # entered / answered, per request
        app = metered_app(buckets=[0.005, 0.5])
        app.get("/items/{id}")(lambda r: {"id": r.params["id"]})
        client = app.test_client()
        from cello_twisted.ops import metrics as metrics_module

        real_clock = metrics_module.perf_counter
        metrics_module.perf_counter = lambda: next(clock_values)  # read when the chains are built
        try:
            app.invalidate()
            client.get("/items/1")
            client.get("/items/2")
            client.head("/items/3")
        finally:
            metrics_module.perf_counter = real_clock
            app.invalidate()
        text = client.get("/metrics").text
        get = {"method": "GET", "route": "/items/{id}"}
        self.assertEqual(value(text, "cello_requests_total", status="200", **get), 2)
        self.assertEqual(value(text, "cello_requests_total", method="HEAD", route="/items/{id}", status="200"), 1)
        self.assertEqual(value(text, "cello_request_duration_seconds_bucket", le="0.005", **get), 1)
        self.assertEqual(value(text, "cello_request_duration_seconds_bucket", le="0.5", **get), 2)
        self.assertAlmostEqual(value(text, "cello_request_duration_seconds_sum", **get), 0.302)
        self.assertEqual(value(text, "cello_request_duration_seconds_count", method="HEAD", route="/items/{id}"), 1)
        self.assertEqual(value(text, "cello_requests_in_progress", method="GET"), 0)

    def test_statuses_are_counted_whichever_comes_first(self) -> None:
        """r2: a route whose first answers are errors still counts each status apart, errors included."""
        app = metered_app()
        outcomes = iter([500, 404, 200, 200, 500, 201, 200])

        @app.get("/flaky")
        def flaky(request: Any) -> Any:
            status = next(outcomes)
            if status >= 400:
                raise HTTPError(status, "no")
            return Response.json({}, status=status)

        client = app.test_client()
        for _ in range(7):
            client.get("/flaky")
        text = client.get("/metrics").text
        counted = {s: value(text, "cello_requests_total", method="GET", route="/flaky", status=s) for s in ("200", "201", "404", "500")}
        self.assertEqual(counted, {"200": 3, "201": 1, "404": 1, "500": 2})

    def test_in_progress_gauge_counts_the_running_request(self) -> None:
        """r2: cello_requests_in_progress{method} is 1 while a request runs, 0 after."""
        app = metered_app()
        seen: list[bytes] = []

        @app.get("/peek")
        def peek(request: Any) -> str:
            from prometheus_client import generate_latest

            seen.append(generate_latest(registry))
            return "ok"

        registry = _registry_of(app)
        client = app.test_client()
        client.get("/peek")
        self.assertEqual(value(seen[0].decode(), "cello_requests_in_progress", method="GET"), 1)
        self.assertEqual(value(client.get("/metrics").text, "cello_requests_in_progress", method="GET"), 0)

    def test_refusals_by_kind(self) -> None:
        """r2: JWT 401s (missing, invalid) → kind="jwt"; guards → "guard"; CSRF → "csrf"; 429 → rate_limited{route}."""
        app = metered_app()
        app.enable_jwt(JwtConfig(secret=SECRET), skip_paths=["/open", "/forms", "/limited"], required=True)
        app.get("/private")(lambda r: "secret")
        app.get("/open", guards=[lambda r: False])(lambda r: "never")
        forms = Blueprint("/forms")  # CSRF on its own blueprint
        forms.use(Csrf(CsrfConfig(secret=SECRET)))
        forms.post("/one")(lambda r: "posted")
        app.register_blueprint(forms)
        app.get("/limited", rate_limit=RateLimitConfig(requests=1, window=60))(lambda r: "ok")
        client = app.test_client()
        self.assertEqual(client.get("/private").status_code, 401)
        self.assertEqual(client.get("/private", headers={"Authorization": "Bearer not.a.token"}).status_code, 401)
        self.assertEqual(client.get("/open").status_code, 403)
        self.assertEqual(client.post("/forms/one").status_code, 403)
        self.assertEqual(client.get("/limited").status_code, 200)
        self.assertEqual(client.get("/limited").status_code, 429)
        text = client.get("/metrics").text
        self.assertEqual(value(text, "cello_auth_failures_total", kind="jwt"), 2)
        self.assertEqual(value(text, "cello_auth_failures_total", kind="guard"), 1)
        self.assertEqual(value(text, "cello_auth_failures_total", kind="csrf"), 1)
        self.assertEqual(value(text, "cello_rate_limited_total", route="/limited"), 1)

    def test_a_refusal_answered_with_the_usual_status_is_still_counted(self) -> None:
        """r2: a guard refusal that an exception handler turns into the route's usual 302 still counts
        as kind="guard"; a route without guards or refusing middleware counts its statuses alike."""
        from cello_twisted import GuardError, Response

        app = metered_app()

        @app.exception_handler(GuardError)
        def to_login(request: Any, exc: GuardError) -> Response:
            return Response.redirect("/login")

        app.get("/account", guards=[lambda r: r.headers.get("x-user") is not None])(
            lambda r: Response.redirect("/account/home")
        )
        app.get("/plain")(lambda r: Response.redirect("/elsewhere"))
        client = app.test_client()
        self.assertEqual(client.get("/account", headers={"X-User": "u1"}).status_code, 302)  # the usual status
        self.assertEqual(client.get("/account").headers.get("Location"), "/login")  # refused, answered 302
        self.assertEqual(client.get("/plain").status_code, 302)
        self.assertEqual(client.get("/plain").status_code, 302)
        text = client.get("/metrics").text
        self.assertEqual(value(text, "cello_auth_failures_total", kind="guard"), 1)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/account", status="302"), 2)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/plain", status="302"), 2)

    def test_shared_store_errors_by_class_name(self) -> None:
        """r2: a shared store that cannot answer counts cello_shared_store_errors_total{store=<class>}."""
        app = metered_app()
        store = RedisRateLimitStore(url="redis://127.0.0.1:1/0", timeout=0.2)
        app.enable_rate_limit(RateLimitConfig(requests=10, window=60, store=store))
        app.get("/")(lambda r: "ok")
        client = app.test_client()
        self.assertEqual(client.get("/").status_code, 503)
        text = client.get("/metrics").text
        self.assertGreaterEqual(value(text, "cello_shared_store_errors_total", store="RedisRateLimitStore"), 1)

    def test_sse_gauge(self) -> None:
        """r2: cello_sse_streams is 1 while an SSE stream is open, 0 once the client went away."""
        from twisted.internet.defer import Deferred

        app = metered_app()
        hold: Deferred[None] = Deferred()

        async def source() -> Any:
            yield "hello"
            await hold

        app.get("/events")(lambda r: SseStream(source(), ping_interval=None))
        client = app.test_client()
        stream = client.stream("GET", "/events")
        self.assertEqual(value(client.get("/metrics").text, "cello_sse_streams"), 1)
        stream.close()
        self.assertEqual(value(client.get("/metrics").text, "cello_sse_streams"), 0)

    def test_websocket_gauge(self) -> None:
        """r2: cello_websocket_connections is 1 while a WebSocket is open, 0 after it closed."""
        app = metered_app()

        @app.websocket("/ws")
        async def ws(socket: Any) -> None:
            await socket.receive()

        client = app.test_client()
        with client.websocket_connect("/ws"):
            self.assertEqual(value(client.get("/metrics").text, "cello_websocket_connections"), 1)
        self.assertTrue(
            wait_until(lambda: value(client.get("/metrics").text, "cello_websocket_connections") == 0, 5)
        )

    def test_guards_head_and_configuration(self) -> None:
        """/metrics takes guards=; HEAD works; bad path or buckets → ConfigError; custom buckets apply."""
        app = metered_app(guards=[lambda r: r.client_ip == "127.0.0.1"], buckets=[0.1, 0.5])
        app.get("/")(lambda r: "ok")
        client = app.test_client()
        client.get("/")
        text = client.get("/metrics").text
        les = {dict(k)["le"] for k in samples(text, "cello_request_duration_seconds_bucket")}
        self.assertEqual(les, {"0.1", "0.5", "+Inf"})
        self.assertEqual(client.head("/metrics").status_code, 200)
        self.assertEqual(app.test_client(client_ip="10.1.1.1").get("/metrics").status_code, 403)
        for kwargs in ({"path": "metrics"}, {"buckets": [1, 0.5]}, {"buckets": ["x"]}, {"buckets": []}, {"registry": "global"}):
            with self.assertRaises(ConfigError):
                App().enable_metrics(**{"registry": CollectorRegistry(), **kwargs})  # type: ignore[arg-type]

    def test_missing_extra_names_it(self) -> None:
        """Principles: without prometheus-client, enable_metrics raises ImportError naming the [metrics] extra."""
        saved = {k: v for k, v in sys.modules.items() if k == "prometheus_client" or k.startswith("prometheus_client.")}
        for k in saved:
            del sys.modules[k]
        sys.modules["prometheus_client"] = None  # type: ignore[assignment]
        try:
            with self.assertRaises(ImportError) as caught:
                App().enable_metrics()
        finally:
            del sys.modules["prometheus_client"]
            sys.modules.update(saved)
        self.assertIn("cello-twisted[metrics]", str(caught.exception))

    def test_mounts_are_labelled_with_their_prefix(self) -> None:
        """r2: a mount's responses carry its prefix template (blueprint prefix included) and the status the resource sent."""
        app = metered_app()
        app.mount("/legacy", _Leaf(200))
        app.mount("/gone", _Leaf(404))
        api = Blueprint("/api")
        api.mount("/old", _Leaf(200))
        app.register_blueprint(api)
        client = app.test_client()
        for path in ("/legacy", "/legacy/a", "/legacy/b/c?q=1"):
            self.assertEqual(client.get(path).status_code, 200)
        self.assertEqual(client.get("/gone/x").status_code, 404)
        self.assertEqual(client.post("/api/old/y").status_code, 200)
        client.get("/elsewhere")
        text = client.get("/metrics").text
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/legacy", status="200"), 3)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/gone", status="404"), 1)
        self.assertEqual(value(text, "cello_requests_total", method="POST", route="/api/old", status="200"), 1)
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="<unmatched>", status="404"), 1)
        self.assertEqual(value(text, "cello_requests_in_progress", method="GET"), 0)

    def test_handler_timeout_503_is_counted(self) -> None:
        """r2, §4 r5: the handler-timeout 503 passes the chain and is counted with its route and status 503."""
        clock = Clock()
        app = App(clock=clock, handler_timeout=1)
        app.enable_metrics(registry=CollectorRegistry())
        app.get("/hang/{id}")(lambda request: Deferred())
        wire = Wire(app)
        wire.send("GET", "/hang/7")
        clock.advance(1)
        self.assertEqual(wire.response()[0], 503)
        registry = _registry_of(app)
        labels = {"method": "GET", "route": "/hang/{id}", "status": "503"}
        self.assertEqual(registry.get_sample_value("cello_requests_total", labels), 1)
        self.assertEqual(registry.get_sample_value("cello_requests_in_progress", {"method": "GET"}), 0)

    def test_a_client_gone_mid_request_counts_nothing(self) -> None:
        """r2: a request whose client disconnects before the response leaves the in-progress gauge at 0
        and adds no response to cello_requests_total."""
        app = App(clock=Clock())
        app.enable_metrics(registry=CollectorRegistry())
        app.get("/hang")(lambda request: Deferred())
        registry = _registry_of(app)
        wire = Wire(app)
        wire.send("GET", "/hang")
        self.assertEqual(registry.get_sample_value("cello_requests_in_progress", {"method": "GET"}), 1)
        wire.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(registry.get_sample_value("cello_requests_in_progress", {"method": "GET"}), 0)
        self.assertIsNone(registry.get_sample_value("cello_requests_total", {"method": "GET", "route": "/hang", "status": "200"}))

    def test_cluster_workers_expose_the_same_series_as_one_process(self) -> None:
        """r3: a cluster worker (prometheus-client's objects, multiprocess mode) and a single process
        (plain numbers read at scrape time) expose the same lines for the same traffic, with and without
        prometheus-client's ``_created`` samples."""
        import prometheus_client

        def scrape_after_traffic(multiprocess: bool) -> str:
            registry = CollectorRegistry()
            app = App()
            environ = {"PROMETHEUS_MULTIPROC_DIR": tempdir(self)} if multiprocess else {}
            with mock.patch.dict(os.environ, environ):
                metrics = app.enable_metrics(registry=registry, buckets=[100.0, 200.0])
            self.assertEqual(metrics.multiprocess, multiprocess)
            app.get("/users/{id}")(lambda r: ({"id": r.params["id"]}, 201 if r.params["id"] == "1" else 200))
            app.post("/boom")(lambda r: 1 / 0)
            app.get("/limited", rate_limit=RateLimitConfig(requests=1, window=60))(lambda r: "ok")
            app.mount("/legacy", _Leaf(202))
            client = app.test_client()
            for path in ("/users/1", "/users/2", "/users/3", "/nope", "/limited", "/limited", "/legacy/x"):
                client.get(path)
            client.post("/boom")
            client.head("/users/4")
            client.request("PURGE", "/users/5")
            client.delete("/users/6")
            client.options("/users/7")
            masked = []
            for line in prometheus_client.generate_latest(registry).decode().splitlines():
                name = line.split("{")[0].split(" ")[0]
                if not line.startswith("#") and name.endswith(("_created", "_sum")):
                    line = line.rsplit(" ", 1)[0] + " <time>"  # timestamps and durations differ run to run
                masked.append(line)
            return "\n".join(masked)

        with_created = scrape_after_traffic(False)
        self.assertIn("cello_requests_created", with_created)
        self.assertIn('cello_request_duration_seconds_bucket{le="100.0",method="GET",route="/users/{id}"} 3.0', with_created)
        self.assertEqual(with_created, scrape_after_traffic(True))
        prometheus_client.disable_created_metrics()
        try:
            without_created = scrape_after_traffic(False)
            self.assertNotIn("_created", without_created)
            self.assertEqual(without_created, scrape_after_traffic(True))
        finally:
            prometheus_client.enable_created_metrics()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 4)

    def test_handler_errors_are_answered_and_counted_in_both_modes(self) -> None:
        """r2: alone on a route, metrics calls the endpoint itself (guards_call_next), so it must turn
        every handler error into the standard response: raised and failed-Deferred errors, HTTPErrors,
        an async exception handler's answer. Each is counted with its status; nothing stays in progress."""

        class Teapot(Exception):
            pass

        async def teapot_handler(request, exc):
            return Response.json({"error": "teapot"}, status=418)

        async def failing(request):
            raise HTTPError(409, "taken")

        async def crashing(request):
            raise ZeroDivisionError

        def run(multiprocess: bool) -> None:
            registry = CollectorRegistry()
            app = App()
            environ = {"PROMETHEUS_MULTIPROC_DIR": tempdir(self)} if multiprocess else {}
            with mock.patch.dict(os.environ, environ):
                app.enable_metrics(registry=registry)
            app.exception_handler(Teapot)(teapot_handler)
            app.get("/raise")(lambda r: 1 / 0)
            app.get("/http")(lambda r: (_ for _ in ()).throw(HTTPError(403, "no")))
            app.get("/failing")(failing)
            app.get("/crashing")(crashing)
            app.get("/teapot")(lambda r: (_ for _ in ()).throw(Teapot()))
            client = app.test_client()
            expected = {"/raise": 500, "/http": 403, "/failing": 409, "/crashing": 500, "/teapot": 418}
            for path, status in expected.items():
                response = client.get(path)
                self.assertEqual(response.status_code, status, path)
                self.assertEqual(response.headers.get("Content-Type"), "application/json")
                self.assertNotIn("Traceback", response.text)
            text = prometheus_client.generate_latest(registry).decode()  # as the cluster test reads it
            for path, status in expected.items():
                labels = {"method": "GET", "route": path, "status": str(status)}
                self.assertEqual(value(text, "cello_requests_total", **labels), 1, (multiprocess, path))
            self.assertEqual(value(text, "cello_requests_in_progress", method="GET"), 0)
            self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)

        import prometheus_client

        run(multiprocess=False)
        run(multiprocess=True)

    def test_off_costs_nothing_in_the_chain(self) -> None:
        """Without enable_metrics no metrics middleware is in any chain."""
        app = App()
        app.get("/")(lambda r: "ok")
        route = app.compiled_routes()[0]
        self.assertEqual(route.middleware, [])


class _Leaf(Resource):
    """A mounted twisted.web leaf answering with a fixed status."""

    isLeaf = True

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def render(self, request: Any) -> bytes:
        request.setResponseCode(self.status)
        return b"leaf"


def _registry_of(app: App) -> Any:
    from cello_twisted.ops.metrics import MetricsMiddleware

    for mw in app.middleware:
        if isinstance(mw, MetricsMiddleware):
            return mw.metrics.registry
    raise AssertionError("no metrics middleware")


CLUSTER_APP = '''
import os
from cello_twisted import App

app = App()
app.enable_metrics()


@app.get("/")
def index(request):
    return {"pid": os.getpid()}


if __name__ == "__main__":
    app.run()
'''


@pytest.mark.live
class ClusterMetricsTests(SynchronousTestCase):
    def test_one_scrape_sums_every_worker_and_survives_a_restart(self) -> None:
        """r3: with 2 workers one scrape's cello_requests_total equals the responses both served;
        a worker SIGKILLed and restarted does not reset the sum; the parent removes the directory at stop."""
        import json

        workdir = tempdir(self)
        tmp = tempdir(self)
        app_path = write_app(workdir, source=CLUSTER_APP)
        child = spawn(self, [PYTHON, app_path, "--port", "0", "--workers", "2", "--no-logs"], workdir, {"TMPDIR": tmp})
        port = child.port()
        child.wait_for(r"worker 0 serving", 15)
        child.wait_for(r"worker 1 serving", 15)
        self.addCleanup(self._kill_workers, child)
        dirs = [d for d in os.listdir(tmp) if d.startswith("cello-metrics-")]
        self.assertEqual(len(dirs), 1)

        by_pid: dict[int, int] = {}

        def hit(n: int) -> None:
            # Eight clients at once: which worker accepts a connection is the kernel's choice,
            # and one by one a single worker may win every time.
            with ThreadPoolExecutor(8) as pool:
                for pid in pool.map(lambda _: json.loads(get(port, "/")[1])["pid"], range(n)):
                    by_pid[pid] = by_pid.get(pid, 0) + 1

        hit(200)
        for _ in range(9):  # bounded: at most 2,000 requests until both workers have served
            if len(by_pid) == 2:
                break
            hit(200)
        self.assertEqual(len(by_pid), 2, by_pid)  # both workers served
        text = get(port, "/metrics")[1].decode()
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/", status="200"), 200)

        victim = max(by_pid, key=lambda p: by_pid[p])
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: len(self._pids(child)) == 3, 15), child.output)
        (newcomer,) = self._pids(child) - set(by_pid)
        child.wait_for(rf"worker \d serving \(pid {newcomer}\)", 15)
        hit(50)
        text = get(port, "/metrics")[1].decode()
        total = value(text, "cello_requests_total", method="GET", route="/", status="200")
        self.assertEqual(total, sum(by_pid.values()))
        self.assertGreaterEqual(total, 250)
        self.assertEqual(child.stop(), 0)
        self.assertEqual([d for d in os.listdir(tmp) if d.startswith("cello-metrics-")], [])

    def test_twistd_cluster_sums_workers_and_cleans_up(self) -> None:
        """r3 under twistd --workers 2: one scrape sums both workers; the parent removes its directory at stop."""
        import json

        from tests._support.processes import TWISTD, free_port

        workdir = tempdir(self)
        tmp = tempdir(self)
        app_path = write_app(workdir, source=CLUSTER_APP)
        port = free_port()
        child = spawn(
            self,
            [TWISTD, "-n", "--pidfile=", "cello", "--app", app_path, "--listen", f"tcp:{port}:interface=127.0.0.1",
             "--workers", "2"],
            workdir,
            {"TMPDIR": tmp},
        )  # fmt: skip
        self.addCleanup(self._kill_workers, child)
        self.assertTrue(wait_until(lambda: len(re.findall(r"serving on IPv4", child.output)) >= 2, 20), child.output)
        self.assertEqual(len([d for d in os.listdir(tmp) if d.startswith("cello-metrics-")]), 1)
        pids: list[int] = []
        with ThreadPoolExecutor(8) as pool:  # eight clients at once, as above
            for _ in range(10):  # bounded: at most 2,000 requests until both workers have served
                pids += pool.map(lambda _: json.loads(get(port, "/")[1])["pid"], range(200))
                if len(set(pids)) == 2:
                    break
        self.assertEqual(len(set(pids)), 2)  # both workers served
        text = get(port, "/metrics")[1].decode()
        self.assertEqual(value(text, "cello_requests_total", method="GET", route="/", status="200"), len(pids))
        child.send(signal.SIGTERM)
        child.wait(20)
        self.assertEqual([d for d in os.listdir(tmp) if d.startswith("cello-metrics-")], [])

    def _pids(self, child: Any) -> set[int]:
        return {int(m) for m in re.findall(r"worker \d started \(pid (\d+)\)", child.output)}

    def _kill_workers(self, child: Any) -> None:
        for pid in self._pids(child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
