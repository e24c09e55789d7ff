"""Event-driven invocation: async invokes with retries, queue triggers, schedules (docs/events.md).

    from fnhost import Host
    from fnhost.triggers import Triggers

    host = Host(".fnhost")
    with Triggers(host) as triggers:          # starts the background workers; stops them on exit
        accepted = triggers.invoke_async("hello", b'{"name": "you"}')
        triggers.async_invocations.get(accepted.id).status   # queued | running | succeeded | failed

Everything durable lives in the host's SQLite file, so several host processes may share one data
dir: claims (async events, queue messages, schedule ticks) are `BEGIN IMMEDIATE` transactions.
Every background loop is a daemon thread that `stop()` ends within its timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Conflict
from ..namespaces import namespace_of
from ..stores._common import int_in_range, require_resource_name
from ..stores.errors import InvalidArgument
from ._common import Counters, LiveManifests, Worker
from .async_invoke import AsyncInvocation, AsyncInvocations, backoff_s
from .queue_trigger import AckHook, QueueMapping, QueueTriggers
from .schedules import Scheduler, ScheduleStatus

if TYPE_CHECKING:
    from ..host import Host


MAX_REDRIVE = 1000
"""The most dead letters one `redrive` call moves (call again for more)."""


@dataclass(frozen=True)
class Redrive:
    """What `Triggers.redrive` did: the ids moved from `queue` to `to`, and what is left in `queue`."""

    queue: str
    to: str
    moved: list[str]
    remaining: int


@dataclass(frozen=True)
class QueueMetrics:
    queue: str
    depth: int
    in_flight: int
    oldest_age_s: float


class Triggers:
    """The event-driven triggers of one host: async invokes, queue mappings and schedules."""

    def __init__(
        self,
        host: Host,
        *,
        async_workers: int = 4,
        retry_base_s: float = 1.0,
        retry_max_s: float = 300.0,
        idempotency_window_s: float = 3600.0,
        lease_margin_s: float = 10.0,
        misfire_grace_s: float = 60.0,
        refresh_interval_s: float = 1.0,
        queue_idle_max_s: float = 0.2,
        on_ack: AckHook | None = None,
    ) -> None:
        self.host = host
        self.counters = Counters()
        self.manifests = LiveManifests(host, host.shares.active)
        self.async_invocations = AsyncInvocations(
            host,
            self.counters,
            retry_base_s=retry_base_s,
            retry_max_s=retry_max_s,
            idempotency_window_s=idempotency_window_s,
            lease_margin_s=lease_margin_s,
        )
        self.queue_triggers = QueueTriggers(
            host, self.manifests, self.counters, on_ack=on_ack, idle_max_s=queue_idle_max_s
        )
        self.scheduler = Scheduler(
            host, self.manifests, self.counters, misfire_grace_s=misfire_grace_s, refresh_interval_s=refresh_interval_s
        )
        self.refresh_interval_s = refresh_interval_s
        self._async_workers = [Worker(f"fnhost-async-{i}", self.async_invocations.step) for i in range(async_workers)]
        self._schedule_worker = Worker("fnhost-scheduler", self.scheduler.step)
        self._refresher = Worker("fnhost-triggers-refresh", self._refresh)
        self.async_invocations.on_submit.append(self._wake_async)
        self.started = False

    # the library calls -------------------------------------------------------------------------
    def invoke_async(
        self,
        function: str,
        payload: bytes = b"",
        *,
        qualifier: str | int | None = None,
        idempotency_key: str | None = None,
        chain_depth: int = 0,
    ) -> AsyncInvocation:
        """Accept an event for `function`'s event handler; it is durable when this returns and runs at
        `chain_depth` (fnhost.chains: what the request that sent it claimed)."""
        return self.async_invocations.submit(
            function, payload, qualifier=qualifier, idempotency_key=idempotency_key, chain_depth=chain_depth
        )

    def queue_mappings(self) -> list[QueueMapping]:
        return self.queue_triggers.list()

    def schedules(self) -> list[ScheduleStatus]:
        return self.scheduler.list()

    def queue_metrics(self) -> list[QueueMetrics]:
        """Depth, in-flight count and age of the oldest message of every queue that holds messages."""
        now = time.time()
        out = []
        for stats in self.host.queues.queue_stats():
            oldest = self.host.queues.peek(stats.queue, 1)
            age = now - oldest[0].enqueued_at if oldest else 0.0
            out.append(QueueMetrics(stats.queue, stats.depth, stats.in_flight, max(0.0, age)))
        return out

    def dead_letter_sources(self, queue: str) -> list[str]:
        """The queues whose mappings dead-letter into `queue` (store names), sorted."""
        return sorted({m.trigger.queue for m in self.queue_mappings() if m.trigger.dead_letter_queue == queue})

    def redrive(self, queue: str, *, to: str | None = None, limit: int = 100) -> Redrive:
        """Move up to `limit` of the oldest messages of dead-letter queue `queue` back to `to` (store
        names), bodies unchanged, as new messages (receive count 0; each moved in one transaction
        with its deletion). Without `to`, the one queue whose mapping dead-letters into `queue`.
        A redrive never leaves the dead-letter queue's namespace."""
        int_in_range("limit", limit, 1, MAX_REDRIVE)
        require_resource_name("queue", queue)
        if to is None:
            sources = self.dead_letter_sources(queue)
            if not sources:
                raise InvalidArgument(
                    f"no queue trigger dead-letters into queue '{queue}'; name the queue to redrive to (\"to\")"
                )
            if len(sources) > 1:
                raise Conflict(
                    f"queues {', '.join(sources)} all dead-letter into '{queue}'; name the one to redrive to (\"to\")"
                )
            to = sources[0]
        require_resource_name("queue", to)
        if namespace_of(to) != namespace_of(queue):
            raise InvalidArgument(
                f"queue '{to}' is not in the namespace of '{queue}'; a redrive stays within one namespace"
            )
        if to == queue:
            raise InvalidArgument(f"cannot redrive queue '{queue}' into itself; name the source queue")
        moved = self.host.queues.move(queue, self.host.queues.peek(queue, limit), to)
        return Redrive(queue, to, moved, self.host.queues.depth(queue))

    def metrics(self) -> dict[str, Any]:
        """Queue gauges plus this process's counters: async_submitted/succeeded/retries/failed,
        queue_delivered/acked/failed, dead_lettered, schedule_fired/skipped."""
        return {
            "queues": [q.__dict__ for q in self.queue_metrics()],
            "async_pending": self.async_invocations.pending(),
            "counters": self.counters.snapshot(),
        }

    # the workers -------------------------------------------------------------------------------
    def start(self) -> Triggers:
        if self.started:
            return self
        self.started = True
        for w in self._async_workers:
            w.start()
        self.scheduler.start()
        self._schedule_worker.start()
        self.queue_triggers.start()
        self._refresher.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop every worker; True if all ended within `timeout_s`. An invocation in progress runs
        to its end (bounded by the function's timeout); work not started stays durable for later."""
        if not self.started:
            return True
        self.started = False
        deadline = time.monotonic() + timeout_s
        workers = [self._refresher, self._schedule_worker, *self._async_workers]
        for w in workers:
            w.stop()
        clean = self.queue_triggers.stop(timeout_s)
        clean = self.scheduler.stop(max(0.0, deadline - time.monotonic())) and clean
        for w in workers:
            clean = w.join(max(0.0, deadline - time.monotonic())) and clean
        return clean

    def __enter__(self) -> Triggers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refresh(self) -> float:
        self.queue_triggers.refresh()
        return self.refresh_interval_s

    def _wake_async(self) -> None:
        for w in self._async_workers:
            w.wake.set()


__all__ = [
    "AsyncInvocation",
    "AsyncInvocations",
    "QueueMapping",
    "QueueMetrics",
    "QueueTriggers",
    "Redrive",
    "ScheduleStatus",
    "Scheduler",
    "Triggers",
    "backoff_s",
]
