"""Prometheus metrics of one app, in its own `CollectorRegistry` (two apps in a process never mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from ..runtime.outcomes import InvocationResult, Outcome

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
