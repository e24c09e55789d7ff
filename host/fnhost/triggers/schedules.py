"""Schedules: cron expressions and fixed rates that invoke the event handler with a `schedule` event.

Each schedule (function + name) has one row (`fnhost.stores.schedules`, either backend) holding its
next due tick. A host fires a tick by moving that row from the due tick it read (compare-and-set),
and only the host that moved it runs the tick: hosts sharing a database never fire a tick twice. The
claim commits before the invocation starts, so a tick is delivered at most once: a host that dies
between the two loses that tick.

Missed ticks are never replayed in a burst. When ticks were missed (the host was down or behind),
the latest due tick fires once if it is at most `misfire_grace_s` late; every other missed tick is
skipped (counted in `schedule_skipped`), and the schedule resumes with its first tick after now.

A new (or changed) schedule starts with its first tick after it is first seen. Rates are aligned to
the Unix epoch (`rate_s = 3600` ticks on the hour, UTC), so every host computes the same ticks.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..manifest import ScheduleTrigger
from ..runtime import abi
from ..stores.schedules import ScheduleState, ScheduleStateStore
from . import cron
from ._common import Counters, LiveManifests, log

if TYPE_CHECKING:
    from ..host import Host

_UNSEEN: dict[str, Any] = {f: None for f in ScheduleState.__dataclass_fields__} | {"fired": 0, "skipped": 0}
"""The state of a schedule this host has not seen yet (its status fields are those of the store's row)."""
COUNT_CAP = 100_000  # skipped cron ticks are counted up to this many


@dataclass(frozen=True)
class Schedule:
    function: str
    trigger: ScheduleTrigger

    @property
    def key(self) -> str:
        return f"{self.function}/{self.trigger.name}"

    @property
    def spec(self) -> str:
        return json.dumps(asdict(self.trigger), sort_keys=True)

    def next_tick_ms(self, after_ms: int) -> int:
        """The first tick strictly after `after_ms` (Unix milliseconds)."""
        t = self.trigger
        if t.rate_s is not None:
            period = t.rate_s * 1000
            return (after_ms // period + 1) * period
        assert t.cron is not None
        after = datetime.fromtimestamp(after_ms / 1000, UTC)
        return int(_cron(t.cron).next_after(after, cron.timezone(t.timezone)).timestamp() * 1000)

    def count_ticks(self, start_ms: int, end_ms: int) -> int:
        """Ticks in [start_ms, end_ms) when start_ms is a tick (capped at COUNT_CAP for cron)."""
        if end_ms <= start_ms:
            return 0
        if self.trigger.rate_s is not None:
            return -(-(end_ms - start_ms) // (self.trigger.rate_s * 1000))
        n, t = 0, start_ms
        while t < end_ms and n < COUNT_CAP:
            n, t = n + 1, self.next_tick_ms(t)
        return n


@lru_cache(maxsize=1024)
def _cron(text: str) -> cron.CronExpression:
    return cron.CronExpression.parse(text)


@dataclass(frozen=True)
class ScheduleStatus:
    function: str
    name: str
    cron: str | None
    rate_s: int | None
    timezone: str
    next_due_ms: int | None
    last_due_ms: int | None
    last_started_at: float | None
    last_invocation_id: str | None
    last_outcome: str | None
    fired: int
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scheduler:
    """Fires the schedules of every function's `live` manifest; one loop thread, a bounded pool."""

    def __init__(
        self,
        host: Host,
        manifests: LiveManifests,
        counters: Counters,
        *,
        misfire_grace_s: float = 60.0,
        refresh_interval_s: float = 1.0,
        workers: int = 4,
        max_pending: int = 64,
    ) -> None:
        self.store = host.open_store(ScheduleStateStore)
        self.host = host
        self.manifests = manifests
        self.counters = counters
        self.misfire_grace_ms = int(misfire_grace_s * 1000)
        self.refresh_interval_s = refresh_interval_s
        self.workers = workers
        self.max_pending = max_pending
        self._schedules: list[Schedule] = []
        self._refreshed = 0.0
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def current(self) -> list[Schedule]:
        return [Schedule(m.name, t) for m in self.manifests.current() for t in m.schedules]

    def list(self) -> list[ScheduleStatus]:
        """Every schedule of the live versions with its state (None/0 before this host first saw it)."""
        out = []
        for s in self.current():
            row = self.store.get(s.key)
            state = asdict(row) if row is not None and row.spec == s.spec else dict(_UNSEEN, spec=s.spec)
            del state["spec"]
            t = s.trigger
            out.append(ScheduleStatus(s.function, t.name, t.cron, t.rate_s, t.timezone, **state))
        return out

    # the loop ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="fnhost-schedule")

    def stop(self, timeout_s: float) -> bool:
        pool, self._pool = self._pool, None
        if pool is None:
            return True
        pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pending = set(self._pending)
        _done, not_done = concurrent.futures.wait(pending, timeout=timeout_s)
        return not not_done

    def step(self) -> float:
        """Fire every due tick; return the seconds until the next one (at most the refresh interval)."""
        if time.monotonic() - self._refreshed >= self.refresh_interval_s:
            self._schedules = self.current()
            self._refreshed = time.monotonic()
        now_ms = int(time.time() * 1000)
        wait_ms = self.refresh_interval_s * 1000
        for s in self._schedules:
            tick, next_due = self._claim(s, now_ms)
            if tick is not None:
                self._dispatch(s, tick)
            wait_ms = min(wait_ms, next_due - now_ms)
        return max(0.0, wait_ms / 1000)

    def _claim(self, s: Schedule, now_ms: int) -> tuple[int | None, int]:
        """(tick to fire or None, next due tick). Of hosts racing for one tick, only the one that moved it fires it."""
        while True:
            row = self.store.get(s.key)
            if row is None or row.spec != s.spec:
                self.store.restart(s.key, s.spec, s.next_tick_ms(now_ms))
                row = self.store.get(s.key)
                if row is None:  # deleted meanwhile
                    return None, now_ms + int(self.refresh_interval_s * 1000)
                return None, row.next_due_ms
            due = row.next_due_ms
            if due > now_ms:
                return None, due
            skipped = 0
            start = due
            if due < now_ms - self.misfire_grace_ms:  # ticks older than the grace period never fire
                start = s.next_tick_ms(now_ms - self.misfire_grace_ms - 1)
                skipped = s.count_ticks(due, start)
            fire: int | None = None
            t = start
            while t <= now_ms:
                if fire is not None:
                    skipped += 1  # an older tick within the grace period: only the latest fires
                fire, t = t, s.next_tick_ms(t)
            if self.store.advance(s.key, s.spec, due, t, fire, skipped):
                break  # ours; otherwise another host moved it first: read it again
        if skipped:
            self.counters.inc("schedule_skipped", s.key, skipped)
            log.warning("fnhost: schedule %s: %d missed tick(s) skipped (not replayed)", s.key, skipped)
        return fire, t

    def _dispatch(self, s: Schedule, tick_ms: int) -> None:
        pool = self._pool
        with self._lock:
            overloaded = len(self._pending) >= self.max_pending
        if pool is None or overloaded:
            self.counters.inc("schedule_skipped", s.key)
            log.warning(
                "fnhost: schedule %s: tick %d dropped, %d ticks still running", s.key, tick_ms, self.max_pending
            )
            return
        future = pool.submit(self._fire, s, tick_ms)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _fire(self, s: Schedule, tick_ms: int) -> None:
        started = time.time()
        self.counters.inc("schedule_fired", s.key)
        try:
            result = self.host.invoke_event(s.function, abi.ScheduleTick(s.trigger.name, tick_ms), trigger="schedule")
            outcome, invocation_id = result.outcome.value, result.invocation_id
        except Exception as e:
            log.exception("fnhost: schedule %s: tick %d did not run", s.key, tick_ms)
            outcome, invocation_id = f"error: {e}", None
        try:
            self.store.record_run(s.key, tick_ms, started, invocation_id, outcome)
        except Exception:
            log.exception("fnhost: schedule %s: could not record tick %d", s.key, tick_ms)
