"""Calling a core module's handler (the core ABI, docs/abi.md), and the host side of its results.

`Func.__call__` asks Wasmtime for the function's type and converts each value on every call
(~40-70 µs here). The ABI's exports have fixed signatures, checked once per version by
`check_signature`, and are looked up once per instance (`CoreExports`), so a call fills its
`wasmtime_val_t` array in place (capi.py). Requests and responses move through the guest's linear
memory, bounds-checked against its size as read after each guest call.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import wasmtime

from ..errors import InvalidWasm
from . import abi
from .capi import GuestFunc, GuestMemory, StoreContext
from .outcomes import GuestFailure, Outcome, RunResult, check_size, checked_response

if TYPE_CHECKING:
    from .prepare import Call, Prepared

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()
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


class CoreExports:
    """One core instance's ABI exports, looked up once: a warm instance (`instance_reuse`) calls
    them again and again without asking Wasmtime for an export, a type or a pointer (capi.py).
    Their types were checked at deploy (`Prepared`)."""

    def __init__(self, context: StoreContext, instance: wasmtime.Instance, prepared: Prepared) -> None:
        exports = instance.exports(context.store)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)  # checked at deploy
        self.memory = GuestMemory(context, memory)
        self.alloc = GuestFunc(context, _func(exports, "fnhost_alloc"), 1, "i32")
        self.handlers = {
            kind: GuestFunc(context, _func(exports, name), 2, "i64") for kind, name in prepared.exports.items()
        }
        self.initialize = GuestFunc(context, _func(exports, "_initialize"), 0, None) if prepared.initialize else None


def _func(exports: Any, name: str) -> wasmtime.Func:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)  # checked at deploy
    return func


def call_core(prepared: Prepared, exports: CoreExports, call: Call) -> RunResult:
    if call.kind == "http":
        data = abi.encode_http_input(call.ctx, call.method, call.path, call.headers, call.payload)
    else:
        data = abi.encode_event_input(call.ctx, call.event or call.payload)
    memory = exports.memory
    ptr = exports.alloc(len(data)) & 0xFFFFFFFF
    if not ptr:
        raise GuestFailure(f"fnhost_alloc({len(data)}) returned 0 (guest out of memory)")
    if ptr + len(data) > memory.refresh():
        raise GuestFailure(f"fnhost_alloc returned {ptr}, outside guest memory for {len(data)} bytes")
    ctypes.memmove(memory.base + ptr, data, len(data))
    packed = exports.handlers[call.kind](ptr, len(data))
    out_ptr, out_len = (packed >> 32) & 0xFFFFFFFF, packed & 0xFFFFFFFF
    check_size(out_len, prepared.limits.max_response_bytes)
    if out_ptr + out_len > memory.refresh():
        raise GuestFailure(f"handler returned buffer {out_ptr}+{out_len}, outside guest memory")
    output = ctypes.string_at(memory.base + out_ptr, out_len)
    try:
        ok, rest = abi.split_status(output)
        if not ok:
            raise GuestFailure(rest.decode("utf-8", "replace"))
        if call.kind == "http":
            result = RunResult(Outcome.OK, response=checked_response(abi.decode_http_response(rest)))
        else:
            out, failed = abi.decode_event_result(rest)
            result = RunResult(Outcome.OK, output=out, failed_message_ids=failed)
    except abi.AbiError as e:
        raise GuestFailure(f"handler output does not follow docs/abi.md: {e}") from None
    result.memory_used_bytes = memory.size  # read after the handler returned
    return result
