"""Prometheus metrics of one app, in its own `CollectorRegistry` (two apps in a process never mix)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from ..runtime.outcomes import InvocationResult, Outcome
from ..triggers import Triggers

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        )

    def watch_triggers(self, triggers: Triggers) -> None:
        """Export the triggers' queue gauges and counters, read at each scrape."""
        self.registry.register(_TriggerCollector(triggers))

    def observe(self, result: InvocationResult) -> None:
        self.invocations.labels(result.function, result.trigger, result.outcome.value).inc()
        if result.outcome is Outcome.THROTTLED:
            self.throttles.labels(result.function, "function").inc()
            return
        if result.outcome is not Outcome.OK:
            self.errors.labels(result.function, result.outcome.value).inc()
        self.duration.labels(result.function).observe(result.duration_ms / 1000)
        self.fuel.labels(result.function).inc(result.fuel_consumed)

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics: Prometheus text exposition format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


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


class _TriggerCollector(Collector):
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
        counters = self.triggers.counters.snapshot()
        for name, (label, text) in TRIGGER_COUNTERS.items():
            family = CounterMetricFamily(f"fnhost_{name}", text, labels=[label])
            for value_label, value in counters.get(name, {}).items():
                family.add_metric([value_label], value)
            yield family
