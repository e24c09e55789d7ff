"""Calling core-ABI exports without wasmtime-py's per-call type lookup.

`Func.__call__` asks Wasmtime for the function's type and converts each value on every call
(~40-70 µs here). The ABI's exports have fixed signatures, checked once per version by
`check_signature`, so a call can fill the `wasmtime_val_t` array directly.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import enter_wasm

from ..errors import InvalidWasm

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()
_KIND_I32 = ffi.WASMTIME_I32.value
_KIND_I64 = ffi.WASMTIME_I64.value


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


def call_i32s(store: wasmtime.Store, func: wasmtime.Func, args: tuple[int, ...], result: str | None) -> int:
    """Call `func(i32...) -> i32 | i64 | ()` (signature checked at deploy); `result` is "i32", "i64" or None."""
    n = len(args)
    params = (ffi.wasmtime_val_t * max(n, 1))()
    for i, value in enumerate(args):
        params[i].kind = _KIND_I32  # type: ignore[assignment]
        params[i].of.i32 = value
    results = (ffi.wasmtime_val_t * 1)()
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(func._func), params, n, results, 0 if result is None else 1, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    if result is None:
        return 0
    return int(results[0].of.i64 if result == "i64" else results[0].of.i32)
