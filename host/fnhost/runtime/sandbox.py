"""Running one invocation in a Wasmtime store: limits, the two guest ABIs, and outcome mapping.

Per host: one engine, one component linker and one core linker with every capability linked once.
Per function version (`Prepared`): the compiled code, export indices, cached call types and the
core `InstancePre`, all computed once. Per invocation: a fresh store (fuel, epoch deadline,
memory/table/instance limits, WASI with only the manifest's env and captured stdio) and a fresh
instance — or, with `instance_reuse`, a warm one of the same version.
"""

from __future__ import annotations

import ctypes
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import wasmtime
import wasmtime.component
from wasmtime import _ffi as ffi
from wasmtime.component import Record
from wasmtime.component._enter import enter_wasm

from ..capabilities.base import (
    CallState,
    Capability,
    LogBuffer,
    current_state,
    set_current_state,
)
from ..errors import InvalidWasm
from ..manifest import Manifest
from . import _fastlist, abi
from ._corecall import I32, I64, call_i32s, check_signature
from .engine import EpochTicker
from .outcomes import HttpResponse, Outcome
from .wasi_poll import DEADLINE_TRAP_PREFIX, link_interruptible_poll

_fastlist.install()

WASM_PAGE = 65536
# What language runtimes print on stderr when an allocation fails (Rust's std, Go's runtime).
OOM_MARKERS = ("memory allocation of ", "fatal error: out of memory", "runtime: out of memory")
CORE_HANDLERS = {"http": "fnhost_handle_http", "event": "fnhost_handle_event"}
COMPONENT_HANDLERS = {"http": "handle-http", "event": "handle-event"}


@dataclass
class Call:
    """What to run: the HTTP handler with a request, or the event handler with an event (`payload`
    for a direct invoke, else `event`: a queue batch or a schedule tick)."""

    kind: str  # "http" | "event"
    ctx: abi.Context
    payload: bytes = b""
    event: abi.QueueBatch | abi.ScheduleTick | None = None
    method: str = "GET"
    path: str = "/"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunResult:
    outcome: Outcome
    output: bytes = b""
    response: HttpResponse | None = None
    error: str | None = None
    failed_message_ids: list[str] = field(default_factory=list)
    fuel_consumed: int = 0
    memory_used_bytes: int | None = None


class GuestFailure(Exception):
    """The handler ran and reported failure, or broke the contract (outcome GuestError)."""


@dataclass
class _Warm:
    store: wasmtime.Store
    stdio: _Stdio
    instance: Any = None
    exports: Any = None  # core modules: the instance's exports, looked up once
    wasi_clock_origin_ns: int = 0  # Wasmtime counts the guest's monotonic clock from the WASI context
    uses: int = 0


class Prepared:
    """One function version, ready to run: everything that does not change between invocations."""

    def __init__(self, sandbox: Sandbox, name: str, version: int, manifest: Manifest, compiled: Any) -> None:
        self.name = name
        self.version = version
        self.manifest = manifest
        self.limits = manifest.limits
        self.compiled = compiled
        self.component = isinstance(compiled, wasmtime.component.Component)
        self.env = list(manifest.env.items())
        self._warm: list[_Warm] = []
        self._lock = threading.Lock()
        self.exports: dict[str, Any] = {}
        if self.component:
            for kind, export in COMPONENT_HANDLERS.items():
                idx = compiled.get_export_index(export)
                if idx is not None:
                    self.exports[kind] = idx
            if not self.exports:
                raise InvalidWasm(
                    "component exports neither handle-http nor handle-event; build it against the "
                    "world `function` in sdk/wit/fnhost.wit"
                )
            self.types: dict[str, tuple[list[Any], Any]] = {}
        else:
            names = {e.name for e in compiled.exports}
            missing = [n for n in ("memory", "fnhost_alloc") if n not in names]
            if missing:
                raise InvalidWasm(f"core module does not export {', '.join(missing)}; see docs/abi.md (Guest exports)")
            self.exports = {k: v for k, v in CORE_HANDLERS.items() if v in names}
            if not self.exports:
                raise InvalidWasm("core module exports neither fnhost_handle_http nor fnhost_handle_event")
            check_signature(compiled, "fnhost_alloc", [I32], [I32])
            for export in self.exports.values():
                check_signature(compiled, export, [I32, I32], [I64])
            self.initialize = "_initialize" in names
            if self.initialize:
                check_signature(compiled, "_initialize", [], [])
            try:
                self.pre = sandbox.core_linker.instantiate_pre(compiled)
            except wasmtime.WasmtimeError as e:
                raise InvalidWasm(f"core module imports something fnhost does not provide: {_first_line(e)}") from None

    # warm instances --------------------------------------------------------------------------
    def take_warm(self) -> _Warm | None:
        if not self.limits.instance_reuse:
            return None
        with self._lock:
            return self._warm.pop() if self._warm else None

    def give_back(self, warm: _Warm) -> None:
        if warm.uses >= self.limits.instance_reuse:
            return
        with self._lock:
            if len(self._warm) < self.limits.max_concurrency:
                self._warm.append(warm)

    def drop_warm(self) -> None:
        with self._lock:
            self._warm.clear()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def trap_summary(e: BaseException) -> str:
    """The cause of a trap plus its innermost frames: "wasm `unreachable` ... (at 0: 0xda - f)"."""
    text = str(e).strip()
    head, _, cause = text.partition("Caused by:")
    cause = " ".join(cause.split()) or _first_line(e)
    cause = cause.removeprefix("wasm trap: ")
    frames = [" ".join(line.split()) for line in head.splitlines()[1:4] if line.strip()]
    return f"{cause} (backtrace: {'; '.join(frames)})" if frames else cause


class _Stdio:
    """Where a store's stdout/stderr go. Wasmtime calls the callbacks from its own I/O threads, so
    the target is held here (per store, swapped per invocation) rather than in a thread-local."""

    def __init__(self) -> None:
        self.logs: LogBuffer | None = None
        self._lock = threading.Lock()

    def _write(self, stream: str, data: bytes) -> None:
        with self._lock:
            if self.logs is not None:
                self.logs.stream(stream, data)

    def stdout(self, data: bytes) -> None:
        self._write("stdout", data)

    def stderr(self, data: bytes) -> None:
        self._write("stderr", data)

    def attach(self, logs: LogBuffer | None) -> None:
        with self._lock:
            self.logs = logs


class Sandbox:
    def __init__(self, engine: wasmtime.Engine, ticker: EpochTicker, capabilities: Sequence[Capability]) -> None:
        self.engine = engine
        self.ticker = ticker
        self.component_linker = wasmtime.component.Linker(engine)
        self.component_linker.add_wasip2()
        with self.component_linker.root() as root:
            for cap in capabilities:
                cap.link_component(root)
        self.core_linker = wasmtime.Linker(engine)
        self.core_linker.define_wasi()
        # WASI sleeps block in the host, where epochs cannot interrupt them: this poll_oneoff waits
        # at most until the invocation's deadline (must be linked before any instantiate_pre).
        link_interruptible_poll(
            self.core_linker, lambda: current_state().deadline, lambda: current_state().wasi_clock_origin_ns
        )
        for cap in capabilities:
            cap.link_core(self.core_linker)

    def prepare(self, name: str, version: int, manifest: Manifest, compiled: Any) -> Prepared:
        prepared = Prepared(self, name, version, manifest, compiled)
        if prepared.component:
            self._trial_instantiate(prepared)
        return prepared

    def _trial_instantiate(self, prepared: Prepared) -> None:
        """Instantiate once at deploy, so a component importing what fnhost lacks fails the deploy."""
        store = self._new_store(prepared).store
        store.set_fuel(prepared.limits.fuel)
        store.set_epoch_deadline(self.ticker.ticks_for(prepared.limits.timeout_ms))
        try:
            self.component_linker.instantiate(store, prepared.compiled)
        except wasmtime.WasmtimeError as e:
            raise InvalidWasm(f"component cannot be instantiated by fnhost: {_first_line(e)}") from None

    # -----------------------------------------------------------------------------------------
    def _new_store(self, prepared: Prepared) -> _Warm:
        store = wasmtime.Store(self.engine)
        stdio = _Stdio()
        origin = time.monotonic_ns()
        store.set_limits(
            memory_size=prepared.limits.memory_mb * 2**20,
            table_elements=1_000_000,
            instances=64,
            tables=64,
            memories=16,
        )
        wasi = wasmtime.WasiConfig()
        wasi.argv = [prepared.name]
        wasi.env = prepared.env
        wasi.stdout_custom = stdio.stdout
        wasi.stderr_custom = stdio.stderr
        store.set_wasi(wasi)
        return _Warm(store, stdio, wasi_clock_origin_ns=origin)

    def run(self, prepared: Prepared, call: Call, state: CallState) -> RunResult:
        limits = prepared.limits
        warm = prepared.take_warm()
        set_current_state(state)
        store: wasmtime.Store | None = None
        fuel_set = 0
        try:
            if warm is None:
                warm = self._new_store(prepared)
            store = warm.store
            warm.stdio.attach(state.logs)
            store.set_fuel(limits.fuel)
            fuel_set = limits.fuel
            store.set_epoch_deadline(self.ticker.ticks_for(limits.timeout_ms))
            state.deadline = time.monotonic() + limits.timeout_ms / 1000
            state.wasi_clock_origin_ns = warm.wasi_clock_origin_ns
            if warm.instance is None:
                self._instantiate(prepared, warm)
            if call.kind not in prepared.exports:
                raise GuestFailure(f"function does not export a {call.kind} handler")
            if prepared.component:
                result = self._call_component(prepared, store, warm.instance, call)
            else:
                result = self._call_core(prepared, store, warm.exports, call)
        except GuestFailure as e:
            result = RunResult(Outcome.GUEST_ERROR, error=str(e))
        except wasmtime.Trap as e:
            result = self._classify(prepared, store, warm, e)
        except wasmtime.WasmtimeError as e:
            result = self._classify(prepared, store, warm, e)
        finally:
            set_current_state(None)
            if warm is not None:
                warm.stdio.attach(None)
            state.logs.flush()
        if store is not None and fuel_set:
            try:
                result.fuel_consumed = fuel_set - store.get_fuel()
            except wasmtime.WasmtimeError:
                result.fuel_consumed = fuel_set
        if warm is not None and warm.exports is not None:
            result.memory_used_bytes = _core_memory_size(warm.store, warm.exports)
        if result.outcome is Outcome.GUEST_TRAP and any(m in line for line in state.logs.lines for m in OOM_MARKERS):
            # a single large allocation refused by the cap traps at low memory: the runtime's own
            # out-of-memory message on stderr tells it apart from other aborts
            result.outcome = Outcome.MEMORY_LIMIT
            result.error = f"memory limit of {limits.memory_mb} MiB reached (limits.memory_mb): {result.error}"
        if result.outcome is Outcome.GUEST_ERROR and (result.error or "").startswith("MemoryError"):
            result.outcome = Outcome.MEMORY_LIMIT
            result.error = f"memory limit of {limits.memory_mb} MiB reached ({result.error})"
        if state.denied and result.outcome in (Outcome.GUEST_ERROR, Outcome.GUEST_TRAP):
            result.outcome = Outcome.DENIED
            result.error = f"{state.denied[0]} (the function failed after: {result.error})"
        if result.outcome is Outcome.OK and warm is not None and limits.instance_reuse:
            warm.uses += 1
            prepared.give_back(warm)
        return result

    def _instantiate(self, prepared: Prepared, warm: _Warm) -> None:
        if prepared.component:
            warm.instance = self.component_linker.instantiate(warm.store, prepared.compiled)
            return
        warm.instance = prepared.pre.instantiate(warm.store)
        warm.exports = warm.instance.exports(warm.store)
        if prepared.initialize:
            call_i32s(warm.store, warm.exports["_initialize"], (), None)

    def _classify(
        self, prepared: Prepared, store: wasmtime.Store | None, warm: _Warm | None, e: Exception
    ) -> RunResult:
        limits = prepared.limits
        code = getattr(e, "trap_code", None)
        text = str(e)
        summary = trap_summary(e)
        if code is None:  # component calls report traps as WasmtimeError: read the cause instead
            if summary.startswith("interrupt"):
                code = wasmtime.TrapCode.INTERRUPT
            elif summary.startswith("call stack exhausted"):
                code = wasmtime.TrapCode.STACK_OVERFLOW
        if code is wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in text:
            return RunResult(Outcome.FUEL_EXHAUSTED, error=f"CPU budget of {limits.fuel} fuel exhausted (limits.fuel)")
        if code is wasmtime.TrapCode.INTERRUPT or DEADLINE_TRAP_PREFIX in text:
            return RunResult(Outcome.TIMEOUT, error=f"timed out after {limits.timeout_ms} ms (limits.timeout_ms)")
        memory_error = RunResult(
            Outcome.MEMORY_LIMIT,
            error=f"memory limit of {limits.memory_mb} MiB reached (limits.memory_mb): {summary}",
        )
        if code is None and "memory" in text and ("limit" in text or "exceed" in text):
            return memory_error  # instantiation needs more memory than the cap
        if warm is not None and warm.exports is not None and store is not None:
            size = _core_memory_size(store, warm.exports)
            if size is not None and size + WASM_PAGE > limits.memory_mb * 2**20:
                return memory_error
        if code is wasmtime.TrapCode.STACK_OVERFLOW:
            return RunResult(Outcome.GUEST_TRAP, error=f"stack overflow: {summary}")
        return RunResult(Outcome.GUEST_TRAP, error=summary)

    # components ------------------------------------------------------------------------------
    def _call_component(self, prepared: Prepared, store: wasmtime.Store, instance: Any, call: Call) -> RunResult:
        func = instance.get_func(store, prepared.exports[call.kind])
        ctx = _record(
            invocation_id=call.ctx.invocation_id,
            function_name=call.ctx.function_name,
            function_version=call.ctx.function_version,
            deadline_unix_ms=call.ctx.deadline_unix_ms,
            memory_limit_mb=call.ctx.memory_limit_mb,
        )
        arg: Any
        if call.kind == "http":
            arg = _record(method=call.method, path_with_query=call.path, headers=call.headers, body=call.payload)
        else:
            arg = _component_event(call)
        value = _component_call(prepared, call.kind, func, store, ctx, arg)
        if isinstance(value, str):
            raise GuestFailure(value)
        if call.kind == "http":
            body = value.body
            _check_size(len(body), prepared.limits.max_response_bytes)
            response = HttpResponse(value.status, [tuple(h) for h in value.headers], body)
            return RunResult(Outcome.OK, response=_checked_response(response))
        output = value.output
        _check_size(len(output), prepared.limits.max_response_bytes)
        return RunResult(Outcome.OK, output=output, failed_message_ids=list(getattr(value, "failed-message-ids")))

    # core modules ----------------------------------------------------------------------------
    def _call_core(self, prepared: Prepared, store: wasmtime.Store, exports: Any, call: Call) -> RunResult:
        if call.kind == "http":
            data = abi.encode_http_input(call.ctx, call.method, call.path, call.headers, call.payload)
        else:
            data = abi.encode_event_input(call.ctx, call.event or call.payload)
        memory = exports["memory"]
        ptr = call_i32s(store, exports["fnhost_alloc"], (len(data),), "i32") & 0xFFFFFFFF
        if not ptr:
            raise GuestFailure(f"fnhost_alloc({len(data)}) returned 0 (guest out of memory)")
        _write(store, memory, ptr, data)
        packed = call_i32s(store, exports[CORE_HANDLERS[call.kind]], (ptr, len(data)), "i64")
        out_ptr, out_len = (packed >> 32) & 0xFFFFFFFF, packed & 0xFFFFFFFF
        _check_size(out_len, prepared.limits.max_response_bytes)
        output = _read(store, memory, out_ptr, out_len)
        try:
            ok, rest = abi.split_status(output)
            if not ok:
                raise GuestFailure(rest.decode("utf-8", "replace"))
            if call.kind == "http":
                return RunResult(Outcome.OK, response=_checked_response(abi.decode_http_response(rest)))
            out, failed = abi.decode_event_result(rest)
            return RunResult(Outcome.OK, output=out, failed_message_ids=failed)
        except abi.AbiError as e:
            raise GuestFailure(f"handler output does not follow docs/abi.md: {e}") from None


MAX_RESPONSE_HEADERS = 200
MAX_RESPONSE_HEADER_BYTES = 64 * 1024
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _checked_response(response: HttpResponse) -> HttpResponse:
    """An HTTP response a server can send as is: a real status, header names that are tokens and
    values without control characters (no response splitting), all latin-1 as HTTP/1.1 needs."""
    if not 100 <= response.status <= 599:
        raise GuestFailure(f"handler returned HTTP status {response.status}; it must be 100..599")
    if len(response.headers) > MAX_RESPONSE_HEADERS:
        raise GuestFailure(f"handler returned {len(response.headers)} headers; at most {MAX_RESPONSE_HEADERS}")
    size = sum(len(name) + len(value) for name, value in response.headers)
    if size > MAX_RESPONSE_HEADER_BYTES:
        raise GuestFailure(f"handler returned {size} bytes of headers; at most {MAX_RESPONSE_HEADER_BYTES}")
    for name, value in response.headers:
        if not _TOKEN.match(name):
            raise GuestFailure(f"handler returned an invalid header name {name[:64]!r}")
        if _BAD_VALUE.search(value) or not _latin1(value):
            raise GuestFailure(f"header {name!r} has a value with control or non-latin-1 characters")
    return response


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise GuestFailure(f"output of {size} bytes is over limits.max_response_bytes ({limit})")


def _component_event(call: Call) -> Any:
    """The WIT `event` variant as wasmtime-py lowers it here: untagged, its cases differ by Python
    type — bytes for `invoke`, a list of records for `queue-batch`, a record for `schedule`."""
    event = call.event
    if isinstance(event, abi.QueueBatch):
        return [_record(id=m.id, queue=m.queue, body=m.body, receive_count=m.receive_count) for m in event.messages]
    if isinstance(event, abi.ScheduleTick):
        return _record(schedule=event.schedule, scheduled_unix_ms=event.scheduled_unix_ms)
    return call.payload


def _record(**fields: Any) -> Record:
    record = Record()
    for key, value in fields.items():
        setattr(record, key.replace("_", "-"), value)
    return record


def _component_call(prepared: Prepared, kind: str, func: Any, store: wasmtime.Store, *args: Any) -> Any:
    """Call a component export with its parameter/result types looked up once per version.

    Same steps as wasmtime-py's `Func.__call__`, minus the per-call type queries.
    """
    types = prepared.types.get(kind)
    if types is None:
        fty = func.type(store)
        types = ([ty for _, ty in fty.params], fty.result)
        prepared.types[kind] = types
    param_tys, result_ty = types
    params = (ffi.wasmtime_component_val_t * len(args))()
    converted = 0
    try:
        for ty, value in zip(param_tys, args, strict=True):
            ty.convert_to_c(store, value, ctypes.pointer(params[converted]))
            converted += 1
        result = ffi.wasmtime_component_val_t()

        def run() -> Any:
            return ffi.wasmtime_component_func_call(
                ctypes.byref(func._func), store._context(), params, converted, ctypes.byref(result), 1
            )

        enter_wasm(run)
        value = result_ty.convert_from_c(result)
    finally:
        for i in range(converted):
            ffi.wasmtime_component_val_delete(ctypes.byref(params[i]))
    func.post_return(store)
    return value


def _memory_view(store: wasmtime.Store, memory: wasmtime.Memory) -> tuple[int, int]:
    return ctypes.addressof(memory.data_ptr(store).contents), memory.data_len(store)


def _write(store: wasmtime.Store, memory: wasmtime.Memory, ptr: int, data: bytes) -> None:
    base, size = _memory_view(store, memory)
    if ptr + len(data) > size:
        raise GuestFailure(f"fnhost_alloc returned {ptr}, outside guest memory for {len(data)} bytes")
    ctypes.memmove(base + ptr, data, len(data))


def _read(store: wasmtime.Store, memory: wasmtime.Memory, ptr: int, length: int) -> bytes:
    base, size = _memory_view(store, memory)
    if ptr + length > size:
        raise GuestFailure(f"handler returned buffer {ptr}+{length}, outside guest memory")
    return ctypes.string_at(base + ptr, length)


def _core_memory_size(store: wasmtime.Store, exports: Any) -> int | None:
    try:
        memory = exports["memory"]
        return int(memory.data_len(store))
    except (KeyError, wasmtime.WasmtimeError):
        return None


__all__ = ["Call", "Prepared", "RunResult", "Sandbox"]
