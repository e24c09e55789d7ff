"""Prometheus metrics of one app.

In one process (the default) they live in the app's own `CollectorRegistry`: two apps in a process
never mix. With several server processes (`fnhost serve --processes N`) they use prometheus_client's
multiprocess mode: the parent sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported,
so every value is kept in a file per process there, and each scrape sums the files of all the
processes (including ones that have exited: counters stay monotonic; the in-flight gauge counts
live processes only).

The triggers' counters are counted here as they happen (`Counters.subscribe`), so each process
writes its own share: async invokes are accepted by whichever process answers, while queue
deliveries, retries and schedule ticks happen where the triggers run. Their queue gauges are read
from the database at each scrape, so any process reports them for the whole server.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from ..control.auth import ADMIN, DEPLOY, INVOKE, Principal
from ..runtime.outcomes import InvocationResult, Outcome
from ..triggers import Triggers

if TYPE_CHECKING:
    from ..host import Host

MAX_ORIGIN_LABELS = 200
"""Distinct destination labels of the outbound metrics; further destinations count as "other"."""
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._scraped: list[Collector] = []  # collectors that read their values at each scrape
        self.invocations = Counter(
            "fnhost_invocations",
            "Invocations finished, by function, trigger and outcome.",
            ["function", "trigger", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "fnhost_invocation_errors",
            "Invocations that did not end with outcome ok, by function and outcome.",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "fnhost_invocation_duration_seconds",
            "Wall-clock duration of invocations inside the sandbox.",
            ["function"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.throttles = Counter(
            "fnhost_throttles",
            "Invocations refused with 429, by function and the limit that refused them.",
            ["function", "limit"],
            registry=self.registry,
        )
        self.fuel = Counter(
            "fnhost_fuel_consumed",
            "Wasm fuel consumed by invocations (a CPU budget unit), by function.",
            ["function"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "fnhost_invocations_in_flight",
            "Invocations admitted and not finished (queued for a worker or running).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.outbound = Counter(
            "fnhost_outbound_requests",
            "Outbound HTTP requests of functions (each redirect hop one), by function, destination and "
            "result (the status class, or the failure: timeout, too-large, denied, unavailable...).",
            ["function", "origin", "result"],
            registry=self.registry,
        )
        self.outbound_bytes = Counter(
            "fnhost_outbound_response_bytes",
            "Response bytes received by outbound HTTP requests, by function and destination.",
            ["function", "origin"],
            registry=self.registry,
        )
        self.outbound_duration = Histogram(
            "fnhost_outbound_request_duration_seconds",
            "Duration of outbound HTTP requests, by function and destination.",
            ["function", "origin"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.chains_stopped = Counter(
            "fnhost_chains_stopped",
            "Chains of functions triggering each other stopped at the chain-depth limit (--max-chain-depth), by "
            "the function and where: publish (a queue message or blob event refused) or request (a 508).",
            ["function", "where"],
            registry=self.registry,
        )
        self._origins: set[str] = set()  # destination labels in use (bounded: MAX_ORIGIN_LABELS)
        self.trigger_counters = {
            name: Counter(f"fnhost_{name}", text, [label], registry=self.registry)
            for name, (label, text) in TRIGGER_COUNTERS.items()
        }

    def watch_runtime(self, host: Host) -> None:
        """Export the threads guests pin past their deadline and the memory idle warm instances hold
        (read from `host` at each scrape), and count the chains it stops (from now on)."""
        collector = _RuntimeCollector(host)
        self.registry.register(collector)
        self._scraped.append(collector)
        host.chains.subscribe(lambda function, where: self.chains_stopped.labels(function, where).inc())

    def watch_triggers(self, triggers: Triggers) -> None:
        """Export the triggers' queue gauges (read at each scrape) and counters (from now on)."""
        collector = _QueueCollector(triggers)
        self.registry.register(collector)
        self._scraped.append(collector)
        triggers.counters.subscribe(self._count_trigger_event)

    def _count_trigger_event(self, name: str, label: str, n: int) -> None:
        counter = self.trigger_counters.get(name)
        if counter is not None:
            counter.labels(label).inc(n)

    def observe(self, result: InvocationResult) -> None:
        self.invocations.labels(result.function, result.trigger, result.outcome.value).inc()
        if result.outcome is Outcome.THROTTLED:
            self.throttles.labels(result.function, "function").inc()
            return
        if result.outcome is not Outcome.OK:
            self.errors.labels(result.function, result.outcome.value).inc()
        self.duration.labels(result.function).observe(result.duration_ms / 1000)
        self.fuel.labels(result.function).inc(result.fuel_consumed)
        for exchange in result.outbound:
            origin = self._origin_label(exchange.grant or exchange.origin)
            outcome = exchange.error or f"{(exchange.status or 0) // 100}xx"
            self.outbound.labels(result.function, origin, outcome).inc()
            self.outbound_bytes.labels(result.function, origin).inc(exchange.bytes_received)
            self.outbound_duration.labels(result.function, origin).observe(exchange.ms / 1000)

    def _origin_label(self, origin: str) -> str:
        """The grant that allowed a request (bounded by the deployed manifests), or under `--egress
        public` its origin — the first `MAX_ORIGIN_LABELS` distinct ones, then "other"."""
        if origin in self._origins:
            return origin
        if len(self._origins) >= MAX_ORIGIN_LABELS:
            return "other"
        self._origins.add(origin)
        return origin

    def exposition(self, visible: Callable[[dict[str, str]], bool] | None = None) -> bytes:
        """The Prometheus text of this app, or of every server process in multiprocess mode;
        with `visible`, only the samples whose labels it accepts."""
        if not self.multiprocess:
            registry: Collector = self.registry
        else:
            registry = CollectorRegistry()  # a fresh one per scrape, as prometheus_client asks
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
            for collector in self._scraped:
                registry.register(collector)
        return generate_latest(registry if visible is None else _Filtered(registry, visible))

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics: Prometheus text exposition format (read off the event loop: files, SQLite).

        Label values name functions, queues and schedules, which are private to their namespace:
        without a key only the samples without such labels are shown; with a key, those of what
        it may see (everything for a global admin key). A bad key is 401, as everywhere."""
        principal = None
        if request.headers.get("authorization"):
            principal = await request.app.state.fnhost.authenticate(request)
        visible = None if principal is not None and principal.namespace is None and ADMIN in principal.scopes else (
            functools.partial(_visible, principal)
        )
        body = await anyio.to_thread.run_sync(self.exposition, visible)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


TRIGGER_COUNTERS = {
    "async_submitted": ("function", "Async invokes accepted (202)."),
    "async_succeeded": ("function", "Async invokes that ended ok."),
    "async_retries": ("function", "Async invoke attempts that failed and were scheduled again."),
    "async_failed": ("function", "Async invokes that failed for good (retries spent)."),
    "queue_delivered": ("queue", "Messages delivered to functions by queue triggers."),
    "queue_acked": ("queue", "Messages acked (deleted) after their function succeeded."),
    "queue_failed": ("queue", "Messages in failed batches or named in failed-message-ids."),
    "dead_lettered": ("source", "Messages and async events moved to a dead-letter queue."),
    "schedule_fired": ("schedule", "Schedule ticks fired."),
    "schedule_skipped": ("schedule", "Schedule ticks skipped (missed while down or behind)."),
}


PRIVATE_LABELS = ("function", "queue", "schedule", "source", "origin")
"""Labels whose values are names private to a namespace (an outbound origin: what its functions call)."""


def _visible(principal: Principal | None, labels: dict[str, str]) -> bool:
    """Whether a sample with `labels` may be shown to `principal` (None: a caller without a key)."""
    private = [name for name in PRIVATE_LABELS if name in labels]
    if not private:
        return True
    # queue, schedule, source labels, and an origin without its function: global admins only
    if principal is None or [name for name in private if name != "origin"] != ["function"]:
        return False
    function = labels["function"]
    return any(principal.allows(scope, function) for scope in (DEPLOY, INVOKE))


class _Filtered(Collector):
    """A collector that yields `source`'s metrics with only the samples `visible` accepts."""

    def __init__(self, source: Collector, visible: Callable[[dict[str, str]], bool]) -> None:
        self.source = source
        self.visible = visible

    def collect(self) -> Iterator[Metric]:
        for metric in self.source.collect():
            metric.samples = [s for s in metric.samples if self.visible(s.labels)]
            yield metric


class _RuntimeCollector(Collector):
    def __init__(self, host: Host) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        stats = self.host.runtime_stats()
        by_function = stats.pinned_by_function
        total = GaugeMetricFamily(
            "fnhost_pinned_threads",
            "Threads still running a guest past its deadline (blocked where Wasmtime cannot interrupt it).",
        )
        total.add_metric([], sum(by_function.values()))
        per_function = GaugeMetricFamily(
            "fnhost_pinned_threads_by_function", "Pinned threads, by function.", labels=["function"]
        )
        for function, n in sorted(by_function.items()):
            per_function.add_metric([function], n)
        limit = GaugeMetricFamily("fnhost_pinned_threads_limit", "The most threads all functions may pin.")
        limit.add_metric([], stats.max_pinned)
        warm = GaugeMetricFamily(
            "fnhost_warm_idle_bytes", "Memory idle warm instances may hold, each counted at its limits.memory_mb."
        )
        warm.add_metric([], stats.warm_idle_bytes)
        warm_limit = GaugeMetricFamily("fnhost_warm_idle_bytes_limit", "The most idle warm instances may hold.")
        warm_limit.add_metric([], stats.max_warm_idle_bytes)
        logs = GaugeMetricFamily("fnhost_log_memory_bytes", "Log lines running invocations hold in memory, together.")
        logs.add_metric([], stats.log_bytes)
        logs_limit = GaugeMetricFamily("fnhost_log_memory_bytes_limit", "The most running invocations' logs may hold.")
        logs_limit.add_metric([], stats.max_log_bytes)
        isolated = CounterMetricFamily(
            "fnhost_isolated_invocations",
            "Invocations of demoted functions run in the isolation process (fnhost serve --isolate).",
        )
        isolated.add_metric([], stats.isolated_invocations)
        isolation = GaugeMetricFamily("fnhost_isolation_up", "1 while the isolation process runs.")
        isolation.add_metric([], int(stats.isolation_up))
        yield from (total, per_function, limit, warm, warm_limit, logs, logs_limit, isolated, isolation)


class _QueueCollector(Collector):
    def __init__(self, triggers: Triggers) -> None:
        self.triggers = triggers

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("fnhost_queue_depth", "Messages not yet acked, by queue.", labels=["queue"])
        in_flight = GaugeMetricFamily("fnhost_queue_in_flight", "Messages received, not acked.", labels=["queue"])
        age = GaugeMetricFamily(
            "fnhost_queue_oldest_message_age_seconds", "Age of the oldest message, by queue.", labels=["queue"]
        )
        for q in self.triggers.queue_metrics():
            depth.add_metric([q.queue], q.depth)
            in_flight.add_metric([q.queue], q.in_flight)
            age.add_metric([q.queue], q.oldest_age_s)
        yield from (depth, in_flight, age)
