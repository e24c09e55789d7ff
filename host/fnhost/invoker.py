"""From a function name and qualifier to a finished invocation: version resolution, per-function
concurrency limits, the prepared-version cache, the sandbox run, and the invocation record."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .capabilities.base import CallState, LogBuffer, VersionGrants
from .recorder import InvocationRecorder
from .runtime import abi
from .runtime.outcomes import InvocationResult, Outcome
from .runtime.sandbox import Call, Prepared, RunResult, Sandbox
from .stores import InvocationRecord, Registry, VersionRecord, new_sortable_id


class Invoker:
    def __init__(
        self,
        registry: Registry,
        sandbox: Sandbox,
        invocations: InvocationRecorder,
        load: Callable[[VersionRecord], Prepared],
        max_prepared: int = 256,
    ) -> None:
        self.registry = registry
        self.sandbox = sandbox
        self.invocations = invocations
        self._load = load
        self._prepared: OrderedDict[tuple[str, int], tuple[Prepared, VersionGrants]] = OrderedDict()
        self._max_prepared = max_prepared
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._resolved: dict[tuple[str, str | int | None], tuple[float, VersionRecord]] = {}

    # version resolution ----------------------------------------------------------------------------
    RESOLVE_TTL_S = 1.0
    """How long a resolved alias is trusted without asking SQLite again. Changes made through this
    host invalidate at once; changes by another process sharing the data dir show within this."""

    def resolve(self, name: str, qualifier: str | int | None) -> VersionRecord:
        key = (name, qualifier)
        now = time.monotonic()
        hit = self._resolved.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = self.registry.resolve(name, qualifier)
        self._resolved[key] = (now + self.RESOLVE_TTL_S, record)
        return record

    def invalidate(self, name: str) -> None:
        """Forget resolved aliases of `name` (after a deploy, alias change or delete)."""
        for key in [k for k in self._resolved if k[0] == name]:
            self._resolved.pop(key, None)

    # prepared versions --------------------------------------------------------------------------
    def add_prepared(self, prepared: Prepared) -> None:
        with self._lock:
            self._prepared[(prepared.name, prepared.version)] = (
                prepared,
                VersionGrants.of(prepared.manifest),
            )
            self._prepared.move_to_end((prepared.name, prepared.version))
            while len(self._prepared) > self._max_prepared:
                _, (old, _g) = self._prepared.popitem(last=False)
                old.drop_warm()

    def replace_prepared(self, old: Prepared, new: Prepared) -> None:
        """Put `new` in the place of `old` (a tier-up), if `old` is still the cached one."""
        key = (old.name, old.version)
        with self._lock:
            hit = self._prepared.get(key)
            if hit is None or hit[0] is not old:
                return
            self._prepared[key] = (new, hit[1])
        old.drop_warm()

    def prepared_for(self, record: VersionRecord) -> Prepared:
        return self._get_prepared(record)[0]

    def forget(self, name: str) -> None:
        self.invalidate(name)
        with self._lock:
            for key in [k for k in self._prepared if k[0] == name]:
                self._prepared.pop(key)[0].drop_warm()

    def _get_prepared(self, record: VersionRecord) -> tuple[Prepared, VersionGrants]:
        key = (record.name, record.version)
        with self._lock:
            hit = self._prepared.get(key)
            if hit is not None:
                self._prepared.move_to_end(key)
                return hit
        prepared = self._load(record)  # deserializing outside the lock; a racing load is harmless
        self.add_prepared(prepared)
        with self._lock:
            return self._prepared[key]

    # invoking ------------------------------------------------------------------------------------
    def invoke(
        self,
        name: str,
        qualifier: str | int | None,
        build: Callable[[abi.Context], Call],
        trigger: str,
    ) -> InvocationResult:
        record = self.resolve(name, qualifier)
        prepared, grants = self._get_prepared(record)
        limits = prepared.limits
        invocation_id = new_sortable_id()
        started = time.time()
        ctx = abi.Context(
            invocation_id=invocation_id,
            function_name=name,
            function_version=str(record.version),
            deadline_unix_ms=int(started * 1000) + limits.timeout_ms,
            memory_limit_mb=limits.memory_mb,
        )
        if not self._enter(name, limits.max_concurrency):
            run = RunResult(
                Outcome.THROTTLED,
                error=f"function '{name}' is at its concurrency limit ({limits.max_concurrency}, "
                "limits.max_concurrency); retry later",
            )
            return self._finish(record, prepared, run, invocation_id, trigger, started, 0.0, [])
        state = CallState(
            invocation_id=invocation_id,
            function=name,
            version=record.version,
            grants=grants,
            logs=LogBuffer(limits.max_log_bytes),
            calls_left=limits.max_host_calls,
            bytes_left=limits.max_host_bytes,
        )
        t0 = time.perf_counter()
        try:
            run = self.sandbox.run(prepared, build(ctx), state)
        finally:
            self._leave(name)
        duration_ms = (time.perf_counter() - t0) * 1000
        return self._finish(record, prepared, run, invocation_id, trigger, started, duration_ms, state.logs.lines)

    def _finish(
        self,
        record: VersionRecord,
        prepared: Prepared,
        run: RunResult,
        invocation_id: str,
        trigger: str,
        started: float,
        duration_ms: float,
        logs: list[str],
    ) -> InvocationResult:
        result = InvocationResult(
            invocation_id=invocation_id,
            function=record.name,
            version=record.version,
            trigger=trigger,
            outcome=run.outcome,
            started_at=started,
            duration_ms=duration_ms,
            fuel_consumed=run.fuel_consumed,
            memory_used_bytes=run.memory_used_bytes,
            memory_limit_mb=prepared.limits.memory_mb,
            output=run.output,
            response=run.response,
            error=run.error,
            logs=list(logs),
            failed_message_ids=run.failed_message_ids,
        )
        self.invocations.record(
            InvocationRecord(
                id=invocation_id,
                function=record.name,
                version=record.version,
                trigger=trigger,
                outcome=result.outcome.value,
                error=result.error,
                started_at=started,
                duration_ms=duration_ms,
                billed_ms=result.billed_ms,
                fuel_consumed=result.fuel_consumed,
                memory_used_bytes=result.memory_used_bytes or 0,
                memory_limit_mb=result.memory_limit_mb,
                logs="\n".join(logs),
                report=result.report,
            )
        )
        return result

    def _enter(self, name: str, limit: int) -> bool:
        with self._lock:
            running = self._running.get(name, 0)
            if running >= limit:
                return False
            self._running[name] = running + 1
            return True

    def _leave(self, name: str) -> None:
        with self._lock:
            self._running[name] -= 1
