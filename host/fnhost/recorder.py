"""Invocation records written off the hot path: appended to a list by the invoker (no thread
wake-up per invocation), made and written in batches by one background thread (one transaction per
batch). Reads flush first, so a caller always sees the record of an invocation that has returned.

The invoker hands over each `InvocationResult` with its logs and outbound requests as they were
when it ended; what a row needs is kept (not the output, which may be megabytes), and the row
(bounded logs, the REPORT line, the outbound JSON) is made from it here, with the batch, not on
the invocation's path.

The same transaction adds the batch to the usage rollups (`stores.usage`: one more round trip per
batch), so a record and its usage are stored together or not at all; the thread also purges
rollups past their retention every `UsageRetention.purge_interval_s`.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from .egress import Exchange, exchanges_json
from .runtime.outcomes import InvocationResult, Outcome, billed_ms, report_line
from .stores import InvocationRecord, InvocationStore, Page, bounded_text
from .stores.usage import UsageRetention, UsageStore

log = logging.getLogger("fnhost")


class _Finished(NamedTuple):
    """What an invocation's record is made of, kept until its batch is written."""

    invocation_id: str
    function: str
    version: int
    trigger: str
    outcome: Outcome
    error: str | None
    started_at: float
    duration_ms: float
    fuel_consumed: int
    memory_used_bytes: int | None
    memory_limit_mb: int
    logs: list[str]
    outbound: Sequence[Exchange]
    chain_depth: int


class InvocationRecorder:
    def __init__(
        self,
        store: InvocationStore,
        usage: UsageStore | None = None,
        *,
        retention: UsageRetention | None = None,
        interval_s: float = 0.1,
    ) -> None:
        self.store = store
        self.usage = usage
        self.retention = retention or UsageRetention()
        self._interval = interval_s
        self._lock = threading.Lock()
        self._buffer: list[InvocationRecord | _Finished] = []
        self._writing = threading.Lock()  # held while a batch is being written
        self._wake = threading.Event()
        self._stop = False
        self._next_purge = 0.0  # monotonic; the first pass purges
        self._thread = threading.Thread(target=self._run, name="fnhost-recorder", daemon=True)
        self._thread.start()

    def record(self, rec: InvocationRecord) -> None:
        with self._lock:
            self._buffer.append(rec)

    def record_result(self, result: InvocationResult, logs: list[str], outbound: Sequence[Exchange]) -> None:
        """Record a finished invocation. `logs` and `outbound` are the recorder's from here on (not the
        result's own lists, which its caller may change before the batch is written)."""
        finished = _Finished(
            result.invocation_id, result.function, result.version, result.trigger, result.outcome, result.error,
            result.started_at, result.duration_ms, result.fuel_consumed, result.memory_used_bytes,
            result.memory_limit_mb, logs, outbound, result.chain_depth,
        )
        with self._lock:
            self._buffer.append(finished)

    def _record_of(self, f: _Finished) -> InvocationRecord:
        return InvocationRecord(
            id=f.invocation_id,
            function=f.function,
            version=f.version,
            trigger=f.trigger,
            outcome=f.outcome.value,
            error=f.error,
            started_at=f.started_at,
            duration_ms=f.duration_ms,
            billed_ms=billed_ms(f.duration_ms),
            fuel_consumed=f.fuel_consumed,
            memory_used_bytes=f.memory_used_bytes or 0,
            memory_limit_mb=f.memory_limit_mb,
            logs=bounded_text(f.logs, self.store.max_record_bytes),
            report=report_line(
                f.invocation_id, f.duration_ms, f.memory_limit_mb, f.memory_used_bytes, f.fuel_consumed, f.outcome
            ),
            outbound=exchanges_json(f.outbound),
            chain_depth=f.chain_depth,
        )

    def flush(self) -> None:
        """Write everything recorded so far (in this thread)."""
        self._write_batch()

    def get(self, invocation_id: str) -> InvocationRecord | None:
        self.flush()
        return self.store.get(invocation_id)

    def list(
        self, function: str | None = None, limit: int = 50, before: str | None = None
    ) -> builtins.list[InvocationRecord]:
        self.flush()
        return self.store.list(function, limit=limit, before=before)

    def page(
        self, function: str | None = None, limit: int = 50, before: str | None = None, outcome: str | None = None
    ) -> Page:
        self.flush()
        return self.store.page(function, limit=limit, before=before, outcome=outcome)

    def clock(self) -> float:
        """The database's clock (see `InvocationStore.recorded_since`), read after a flush: a record
        buffered here would otherwise be written after the clock a follower starts from, and the
        follow would show an invocation that returned before it began."""
        self.flush()
        return self.store.clock()

    def recorded_at(self, invocation_id: str, function: str) -> float | None:
        self.flush()
        return self.store.recorded_at(invocation_id, function)

    def recorded_since(
        self, function: str, after: float, limit: int = 100
    ) -> builtins.list[tuple[float, InvocationRecord]]:
        """Records written after `after`, oldest first (no flush: a follower polls, and sees this
        process's records within the write interval as it sees every other node's)."""
        return self.store.recorded_since(function, after, limit)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._write_batch()

    def _write_batch(self) -> None:
        with self._writing:
            with self._lock:
                pending, self._buffer = self._buffer, []
            if not pending:
                return
            try:
                batch = [rec if isinstance(rec, InvocationRecord) else self._record_of(rec) for rec in pending]
                with self.store.transaction():
                    self.store.record_many(batch)
                    if self.usage is not None:
                        self.usage.record_many(batch)
            except Exception:  # a failed write must not stop later ones; the invocations did run
                log.exception("fnhost: could not record %d invocation(s)", len(pending))

    def _purge(self) -> None:
        if self.usage is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.retention.purge_interval_s
        try:
            self.usage.purge(self.retention)
        except Exception:  # the next pass tries again
            log.exception("fnhost: could not purge usage rollups")

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self._interval)
            self._write_batch()
            self._purge()
