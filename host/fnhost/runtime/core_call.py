"""Calling a core module's handler (the core ABI, docs/abi.md), and the host side of its results.

`Func.__call__` asks Wasmtime for the function's type and converts each value on every call
(~40-70 µs here). The ABI's exports have fixed signatures, checked once per version by
`check_signature`, so a call fills the `wasmtime_val_t` array directly (`call_i32s`). Requests and
responses move through the guest's linear memory, bounds-checked.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import maybe_raise_last_exn

from ..errors import InvalidWasm
from . import abi
from .outcomes import GuestFailure, Outcome, RunResult, check_size, checked_response

if TYPE_CHECKING:
    from .prepare import Call, Prepared

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()
_KIND_I32 = ffi.WASMTIME_I32.value
_KIND_I64 = ffi.WASMTIME_I64.value
CORE_HANDLER_EXPORTS = {"http": "fnhost_handle_http", "event": "fnhost_handle_event"}


def check_signature(
    module: wasmtime.Module, name: str, params: list[wasmtime.ValType], results: list[wasmtime.ValType]
) -> None:
    for export in module.exports:
        if export.name == name:
            ty = export.type
            if (
                not isinstance(ty, wasmtime.FuncType)
                or list(ty.params) != params
                or list(ty.results) != results
            ):
                want = f"({', '.join(map(str, params))}) -> ({', '.join(map(str, results))})"
                raise InvalidWasm(f"export {name} must have the signature {want}; see docs/abi.md")
            return


_PARAMS = [ffi.wasmtime_val_t * max(n, 1) for n in range(3)]  # the ABI's exports take at most 2 args
_RESULTS = ffi.wasmtime_val_t * 1
_TRAP = ctypes.POINTER(ffi.wasm_trap_t)


def call_i32s(store: wasmtime.Store, func: wasmtime.Func, args: tuple[int, ...], result: str | None) -> int:
    """Call `func(i32...) -> i32 | i64 | ()` (signature checked at deploy); `result` is "i32", "i64" or None.

    What `wasmtime._func.enter_wasm` does, without its generator-based context manager (~1.4 µs a call).
    """
    n = len(args)
    params = _PARAMS[n]()
    for i, value in enumerate(args):
        param = params[i]
        param.kind = _KIND_I32  # type: ignore[assignment]
        param.of.i32 = value
    results = _RESULTS()
    trap = _TRAP()
    error = ffi.wasmtime_func_call(
        store._context(), ctypes.byref(func._func), params, n, results, 0 if result is None else 1, ctypes.byref(trap)
    )
    if error:
        maybe_raise_last_exn()  # a host function's Python exception comes first, as in wasmtime-py
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        trap_obj = wasmtime.Trap._from_ptr(trap)
        maybe_raise_last_exn()
        raise trap_obj
    if result is None:
        return 0
    return int(results[0].of.i64 if result == "i64" else results[0].of.i32)


def call_core(prepared: Prepared, store: wasmtime.Store, exports: Any, call: Call) -> RunResult:
    if call.kind == "http":
        data = abi.encode_http_input(call.ctx, call.method, call.path, call.headers, call.payload)
    else:
        data = abi.encode_event_input(call.ctx, call.event or call.payload)
    memory = exports["memory"]
    ptr = call_i32s(store, exports["fnhost_alloc"], (len(data),), "i32") & 0xFFFFFFFF
    if not ptr:
        raise GuestFailure(f"fnhost_alloc({len(data)}) returned 0 (guest out of memory)")
    _write(store, memory, ptr, data)
    packed = call_i32s(store, exports[CORE_HANDLER_EXPORTS[call.kind]], (ptr, len(data)), "i64")
    out_ptr, out_len = (packed >> 32) & 0xFFFFFFFF, packed & 0xFFFFFFFF
    check_size(out_len, prepared.limits.max_response_bytes)
    output = _read(store, memory, out_ptr, out_len)
    try:
        ok, rest = abi.split_status(output)
        if not ok:
            raise GuestFailure(rest.decode("utf-8", "replace"))
        if call.kind == "http":
            return RunResult(Outcome.OK, response=checked_response(abi.decode_http_response(rest)))
        out, failed = abi.decode_event_result(rest)
        return RunResult(Outcome.OK, output=out, failed_message_ids=failed)
    except abi.AbiError as e:
        raise GuestFailure(f"handler output does not follow docs/abi.md: {e}") from None


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
