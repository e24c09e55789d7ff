"""From a function name and qualifier to a finished invocation: version resolution, per-function
concurrency limits, the prepared-version cache, the sandbox run, and the invocation record.

One function must not starve the others. A component runs on a guest thread (`GuestThreads`) and
the invoker waits for it at most until the deadline (plus `DEADLINE_GRACE_S`): a guest blocked
where Wasmtime cannot interrupt it (a WASI preview-2 sleep) is reported as `timeout` at once, and
its thread counted as *pinned* until the guest returns. (A core module runs on the caller's
thread unless demoted: its WASI waits end at the deadline, so it cannot hold the caller past it.)
A function may pin at most `max_pinned_per_function` threads; once all functions together pin
`max_pinned`, functions that pin or recently hit a limit are throttled (a newly misbehaving
function pins at most one more before it is one of them), while well-behaved functions keep
running.

CPU: a function whose invocations recently hit a limit (timeout, fuel, memory, pinned), or whose
invocations run long on average (over `DEMOTE_MEAN_MS`, a moving average), runs on demoted threads
(lower CPU priority) for `DEMOTE_S`: contending for the cores with short, well-behaved functions,
it gets what they leave. With an `Isolation`, it runs in a second process instead (`fnhost.isolation`):
there it shares neither the memory map nor the GIL with them either.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .capabilities.base import CallState, LogBuffer, LogMemory, VersionGrants
from .chains import PUBLISH, ChainGuard
from .egress import Exchange
from .guest_threads import Abandoned, GuestThreads
from .isolation import Isolation, IsolationLost, Ran
from .manifest import Limits
from .recorder import InvocationRecorder
from .runtime import abi
from .runtime.outcomes import InvocationResult, Outcome
from .runtime.sandbox import Call, Prepared, RunResult, Sandbox
from .stores import Registry, VersionRecord, new_sortable_id
from .stores.concurrency import ConcurrencyStore
from .warm import DEFAULT_MAX_WARM_BYTES, WarmPool

DEFAULT_MAX_LOG_MEMORY_BYTES = 256 << 20
"""Log lines all running invocations of one host hold in memory together (each at most its
`limits.max_log_bytes`); past it, lines are dropped with a marker."""


class Invoker:
    def __init__(
        self,
        registry: Registry,
        sandbox: Sandbox,
        invocations: InvocationRecorder,
        load: Callable[[VersionRecord], Prepared],
        max_prepared: int = 256,
        shared: Callable[[str, str, str], bool] | None = None,
        max_pinned_per_function: int = 2,
        max_pinned: int = 16,
        max_warm_bytes: int = DEFAULT_MAX_WARM_BYTES,
        cluster_slots: ConcurrencyStore | None = None,
        max_log_memory_bytes: int = DEFAULT_MAX_LOG_MEMORY_BYTES,
        chains: ChainGuard | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.registry = registry
        self.isolation = isolation  # demoted functions' calls run there once it is up
        self.isolated_calls = 0
        self.chains = chains or ChainGuard()
        self.cluster_slots = cluster_slots  # limits.cluster_max_concurrency, counted in the shared database
        self.sandbox = sandbox
        self.invocations = invocations
        self._load = load
        self._shared = shared  # (kind, store name, namespace) -> shared now? (fnhost.control.shares)
        # Keyed by the binary's sha256 too: a function deleted and deployed again (by another process or
        # node) numbers its versions from 1 again, and must never run the code an old version 1 had.
        self._prepared: OrderedDict[tuple[str, int, str], tuple[Prepared, VersionGrants]] = OrderedDict()
        self._max_prepared = max_prepared
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._resolved: dict[tuple[str, str | int | None], tuple[float, VersionRecord]] = {}
        self.threads = GuestThreads()
        self.warm = WarmPool(max_warm_bytes)
        self.log_memory = LogMemory(max_log_memory_bytes)  # every running invocation's log lines together
        self.max_pinned_per_function = max_pinned_per_function
        self.max_pinned = max_pinned
        self._pinned: dict[str, int] = {}
        self._demoted_until: dict[str, float] = {}
        self._mean_ms: dict[str, float] = {}

    DEADLINE_GRACE_S = 0.25
    """How long past its deadline an invocation is waited for before it is abandoned (an epoch
    interrupt lands within a tick; this covers a loaded machine)."""
    DEMOTE_S = 30.0
    DEMOTE_MEAN_MS = 100.0
    LIMIT_OUTCOMES = frozenset({Outcome.TIMEOUT, Outcome.FUEL_EXHAUSTED, Outcome.MEMORY_LIMIT})

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

    def resolve_cached(self, name: str, qualifier: str | int | None) -> VersionRecord | None:
        """`resolve` if its answer is cached (no I/O, so callable on an event loop), else None."""
        hit = self._resolved.get((name, qualifier))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def invalidate(self, name: str) -> None:
        """Forget resolved aliases of `name` (after a deploy, alias change or delete)."""
        for key in [k for k in list(self._resolved) if k[0] == name]:  # list(): other threads resolve meanwhile
            self._resolved.pop(key, None)

    def invalidate_all(self) -> None:
        """Forget every resolved alias (the change feed from other hosts may have missed some)."""
        self._resolved.clear()

    # prepared versions --------------------------------------------------------------------------
    def add_prepared(self, prepared: Prepared, sha256: str) -> None:
        key = (prepared.name, prepared.version, sha256)
        prepared.warm_pool = self.warm
        with self._lock:
            self._prepared[key] = (
                prepared,
                VersionGrants.of(prepared.manifest, prepared.name),
            )
            self._prepared.move_to_end(key)
            while len(self._prepared) > self._max_prepared:
                _, (old, _g) = self._prepared.popitem(last=False)
                old.drop_warm()

    def drop_warm_except(self, name: str, versions: set[int]) -> None:
        """Drop the warm instances of `name`'s versions other than `versions` (those aliases name):
        a superseded version serves nothing more, so its instances would only hold memory."""
        with self._lock:
            superseded = [p for (n, v, _sha), (p, _) in self._prepared.items() if n == name and v not in versions]
        for prepared in superseded:
            prepared.drop_warm()

    def replace_prepared(self, old: Prepared, new: Prepared, sha256: str) -> None:
        """Put `new` in the place of `old` (a tier-up), if `old` is still the cached one."""
        key = (old.name, old.version, sha256)
        new.warm_pool = self.warm
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
        key = (record.name, record.version, record.sha256)
        with self._lock:
            hit = self._prepared.get(key)
            if hit is not None:
                self._prepared.move_to_end(key)
                return hit
        prepared = self._load(record)  # deserializing outside the lock; a racing load is harmless
        self.add_prepared(prepared, record.sha256)
        with self._lock:
            return self._prepared[key]

    # invoking ------------------------------------------------------------------------------------
    def invoke(
        self,
        name: str,
        qualifier: str | int | None,
        build: Callable[[abi.Context], Call],
        trigger: str,
        chain_depth: int = 0,
    ) -> InvocationResult:
        """Run one invocation at `chain_depth` (`fnhost.chains`); deeper than the limit is `LoopDetected`."""
        self.chains.admit(name, chain_depth)
        record = self.resolve(name, qualifier)
        prepared, grants = self._get_prepared(record)
        if grants.foreign and self._shared is not None:  # a revoked share applies from the next call
            grants = grants.shared_only(self._shared)
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
        demoted = self._demoted_until.get(name, 0.0) > time.monotonic()
        refused = self._enter(name, limits.max_concurrency, demoted)
        slot = None
        if refused is None and limits.cluster_max_concurrency and self.cluster_slots is not None:
            try:
                lease_s = limits.timeout_ms / 1000 + self.CLUSTER_LEASE_MARGIN_S
                slot = self.cluster_slots.acquire(name, limits.cluster_max_concurrency, lease_s)
            except BaseException:
                self._leave(name)
                raise
            if slot is None:
                self._leave(name)
                refused = (
                    f"function '{name}' is at its cluster-wide concurrency limit ({limits.cluster_max_concurrency}, "
                    "limits.cluster_max_concurrency, counted across every node); retry later"
                )
        if refused is not None:
            run = RunResult(Outcome.THROTTLED, error=refused)
            return self._finish(
                record, prepared, run, invocation_id, trigger, started, 0.0, [], chain_depth=chain_depth
            )
        try:
            return self._run(
                name, record, prepared, grants, build, trigger, ctx, invocation_id, started, demoted, chain_depth
            )
        finally:
            if slot is not None and self.cluster_slots is not None:
                self.cluster_slots.release(name, slot)

    CLUSTER_LEASE_MARGIN_S = 10.0
    """A cluster slot's lease is the timeout plus this: a node that dies holding it frees it then."""

    def _run(
        self,
        name: str,
        record: VersionRecord,
        prepared: Prepared,
        grants: VersionGrants,
        build: Callable[[abi.Context], Call],
        trigger: str,
        ctx: abi.Context,
        invocation_id: str,
        started: float,
        demoted: bool,
        chain_depth: int,
    ) -> InvocationResult:
        limits = prepared.limits
        state = self._state(name, record.version, grants, limits, invocation_id, chain_depth)
        t0 = time.perf_counter()
        try:
            call = build(ctx)
            isolation = self.isolation if demoted else None
            if isolation is not None and isolation.ready():
                with self._lock:
                    self.isolated_calls += 1
                args = (name, record.version, record.sha256, call, invocation_id, chain_depth)
                timeout_s = limits.timeout_ms / 1000
                work: Callable[[], RunResult] = lambda: self._adopt(state, isolation.run(args, timeout_s))  # noqa: E731
            else:
                work = lambda: self.sandbox.run(prepared, call, state)  # noqa: E731
            if prepared.component or demoted:
                run = self.threads.run(
                    work,
                    limits.timeout_ms / 1000 + self.DEADLINE_GRACE_S,
                    demoted=demoted,
                    on_abandon=lambda: self._pin(name),
                    on_late=lambda: self._unpin(name),
                )
            else:  # every wait of a core module ends at its deadline (wasi_poll): no thread hop needed
                run = work()
        except Abandoned:
            run = RunResult(
                Outcome.TIMEOUT,
                error=f"timed out after {limits.timeout_ms} ms (limits.timeout_ms); the guest is blocked in a "
                "host wait that cannot be interrupted, so its thread stays pinned until the wait returns",
            )
        except IsolationLost as e:
            self._leave(name)
            run = RunResult(Outcome.GUEST_TRAP, error=str(e))
        except BaseException:
            self._leave(name)
            state.logs.release()
            raise
        else:
            self._leave(name)
        duration_ms = (time.perf_counter() - t0) * 1000
        mean_ms = self._mean_ms[name] = 0.8 * self._mean_ms.get(name, duration_ms) + 0.2 * duration_ms
        if run.outcome in self.LIMIT_OUTCOMES or mean_ms > self.DEMOTE_MEAN_MS:
            self._demoted_until[name] = time.monotonic() + self.DEMOTE_S
        if state.chain_stopped:
            self.chains.count(name, PUBLISH)
        try:
            return self._finish(
                record,
                prepared,
                run,
                invocation_id,
                trigger,
                started,
                duration_ms,
                state.logs.lines,
                state.outbound,
                chain_depth=chain_depth,
            )
        finally:
            state.logs.release()  # the result and the record hold their own copies now

    def _state(
        self, name: str, version: int, grants: VersionGrants, limits: Limits, invocation_id: str, chain_depth: int
    ) -> CallState:
        return CallState(
            invocation_id=invocation_id,
            function=name,
            version=version,
            grants=grants,
            logs=LogBuffer(limits.max_log_bytes, self.log_memory),
            calls_left=limits.max_host_calls,
            bytes_left=limits.max_host_bytes,
            chain_depth=chain_depth,
        )

    @staticmethod
    def _adopt(state: CallState, ran: Ran) -> RunResult:
        """What the isolation process gathered for a call, in this process's state of it."""
        for line in ran.logs:
            state.logs.add(line)
        state.outbound.extend(ran.outbound)
        state.chain_stopped.extend(ran.chain_stopped)
        return ran.run

    def run_here(
        self, name: str, version: int, sha256: str, call: Call, invocation_id: str, chain_depth: int
    ) -> Ran:
        """One call of an exact version, for the host whose isolation process this is: the run and
        what its state gathered; the admission, the deadline and the record are that host's."""
        record = self.registry.resolve(name, version)
        if record.sha256 != sha256:
            raise IsolationLost(f"{name} version {version} is not the binary the host asked for; it was redeployed")
        prepared, grants = self._get_prepared(record)
        if grants.foreign and self._shared is not None:
            grants = grants.shared_only(self._shared)
        state = self._state(name, version, grants, prepared.limits, invocation_id, chain_depth)
        try:
            run = self.sandbox.run(prepared, call, state)
            return Ran(run, state.logs.lines, list(state.outbound), list(state.chain_stopped))
        finally:
            state.logs.release()

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
        outbound: list[Exchange] | None = None,
        *,
        chain_depth: int = 0,
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
            outbound=list(outbound or ()),
            chain_depth=chain_depth,
        )
        self.invocations.record_result(result, logs, tuple(outbound or ()))
        return result

    def _enter(self, name: str, limit: int, demoted: bool) -> str | None:
        """Admit an invocation of `name`, or say why not. Once `max_pinned` threads are pinned, a
        function that has pinned one or recently hit a limit (`demoted`) may not pin more; the others
        run, so one function's misbehaviour never stops the well-behaved ones."""
        with self._lock:
            running = self._running.get(name, 0)
            if running >= limit:
                return (
                    f"function '{name}' is at its concurrency limit ({limit}, limits.max_concurrency); retry later"
                )
            pinned = self._pinned.get(name, 0)
            over = (pinned or demoted) and sum(self._pinned.values()) >= self.max_pinned
            if pinned >= self.max_pinned_per_function or over:
                return (
                    f"function '{name}' has {pinned} invocation(s) still blocked past their deadline (this "
                    f"server allows {self.max_pinned_per_function} per function, {self.max_pinned} in all); "
                    "retry once they return"
                )
            self._running[name] = running + 1
            return None

    def _leave(self, name: str) -> None:
        with self._lock:
            self._running[name] -= 1

    def _pin(self, name: str) -> None:
        with self._lock:
            self._pinned[name] = self._pinned.get(name, 0) + 1

    def _unpin(self, name: str) -> None:
        """On the guest thread, when an abandoned invocation finally returns."""
        with self._lock:
            self._running[name] -= 1
            left = self._pinned[name] - 1
            if left:
                self._pinned[name] = left
            else:
                del self._pinned[name]

    def pinned(self) -> dict[str, int]:
        """Threads pinned by guests past their deadline, by function."""
        with self._lock:
            return dict(self._pinned)

    def close(self) -> None:
        self.threads.close()
        with self._lock:
            prepared = [p for p, _ in self._prepared.values()]
        for p in prepared:
            p.drop_warm()
        with self._lock:
            pinned = any(self._pinned.values())
        if not pinned:  # a guest still running keeps its store's stdio: waiting would only delay the exit
            self.sandbox.wait_released(2.0)
