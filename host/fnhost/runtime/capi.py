"""The few Wasmtime C API calls every invocation makes, bound by fnhost for its own call path.

wasmtime-py wraps each C function in a Python function over a ctypes prototype whose `argtypes`
check and convert every pointer. A warm core-module invocation makes seven such calls (fuel in, the
epoch deadline, two guest calls, two memory-size reads, fuel out), so these are bound again from
the library wasmtime-py loaded, taking plain addresses: about half the cost, or a third
(`python bench/capi.py`, docs/performance.md). Nothing of wasmtime-py changes; other code in the
process, and every other call of fnhost's, still goes through it. The calls that neither block nor
call back into Python keep the GIL (`PYFUNCTYPE`), so an invocation does not hand the interpreter
to another thread at each of them; a guest call releases it, as wasmtime-py's does.

The prototypes are wasmtime.h's; tests/test_capi.py checks them against wasmtime-py's bindings,
so a Wasmtime upgrade that changes one fails there, not in a guest call.

What is cached is what cannot change while an instance lives: a store's context, an export's
`wasmtime_func_t`/`wasmtime_memory_t`, the argument arrays. A memory's base address is cached
with its size: Wasmtime moves a linear memory only when it grows, and a memory never shrinks, so an
unchanged size means an unchanged base.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, addressof, c_int32, c_int64, c_size_t, c_uint64, c_void_p, cast, sizeof
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import maybe_raise_last_exn

# name -> (restype, argtypes), as in wasmtime.h; every pointer is passed as an address (c_void_p)
SIGNATURES: dict[str, tuple[type | None, tuple[type, ...]]] = {
    "wasmtime_context_set_fuel": (c_void_p, (c_void_p, c_uint64)),
    "wasmtime_context_get_fuel": (c_void_p, (c_void_p, c_void_p)),
    "wasmtime_context_set_epoch_deadline": (None, (c_void_p, c_uint64)),
    "wasmtime_memory_data_size": (c_size_t, (c_void_p, c_void_p)),
    "wasmtime_memory_data": (c_void_p, (c_void_p, c_void_p)),
    "wasmtime_func_call": (c_void_p, (c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p)),
}


def _bind(name: str, releases_gil: bool = False) -> Any:
    restype, argtypes = SIGNATURES[name]
    prototype = ctypes.CFUNCTYPE if releases_gil else ctypes.PYFUNCTYPE
    return prototype(restype, *argtypes)((name, ffi.dll))


_set_fuel = _bind("wasmtime_context_set_fuel")
_get_fuel = _bind("wasmtime_context_get_fuel")
_set_epoch_deadline = _bind("wasmtime_context_set_epoch_deadline")
_memory_data_size = _bind("wasmtime_memory_data_size")
_memory_data = _bind("wasmtime_memory_data")
_func_call = _bind("wasmtime_func_call", releases_gil=True)  # may run for seconds and call host functions

_ERROR = POINTER(ffi.wasmtime_error_t)
_TRAP = POINTER(ffi.wasm_trap_t)
_VAL = sizeof(ffi.wasmtime_val_t)
_OF = ffi.wasmtime_val_t.of.offset  # the value's union, after the kind byte
_KIND_I32 = ffi.WASMTIME_I32.value


def _error(address: int) -> wasmtime.WasmtimeError:
    return wasmtime.WasmtimeError._from_ptr(cast(address, _ERROR))


class StoreContext:
    """A store's context, and the limits set on it per invocation (fuel, the epoch deadline)."""

    __slots__ = ("_fuel", "_fuel_address", "address", "store")

    def __init__(self, store: wasmtime.Store) -> None:
        self.store = store  # the context lives as long as its store
        self.address: int = cast(store._context(), c_void_p).value or 0
        self._fuel = c_uint64()
        self._fuel_address = addressof(self._fuel)

    def set_fuel(self, fuel: int) -> None:
        error = _set_fuel(self.address, fuel)
        if error:
            raise _error(error)

    def fuel(self) -> int:
        """The fuel left."""
        error = _get_fuel(self.address, self._fuel_address)
        if error:
            raise _error(error)
        return self._fuel.value

    def set_epoch_deadline(self, ticks: int) -> None:
        _set_epoch_deadline(self.address, ticks)


class GuestMemory:
    """An exported linear memory: its size, and its base address while that size holds."""

    __slots__ = ("_address", "_context", "_memory", "base", "size")

    def __init__(self, context: StoreContext, memory: wasmtime.Memory) -> None:
        self._context = context
        self._memory = memory  # owns the wasmtime_memory_t at `_address`
        self._address = addressof(memory._memory)
        self.size = -1  # bytes, as of the last `refresh`
        self.base = 0

    def refresh(self) -> int:
        """Read the size (it may have grown since the last guest call); the base only if it did."""
        size: int = _memory_data_size(self._context.address, self._address)
        if size != self.size:
            self.base = _memory_data(self._context.address, self._address) or 0
            self.size = size
        return size


class GuestFunc:
    """An exported `(i32...) -> i32 | i64 | ()` whose signature was checked at deploy: called with
    its argument array filled in place, the result read from its own slot."""

    __slots__ = ("_address", "_args", "_arrays", "_context", "_func", "_nresults", "_result", "_results", "_slots",
                 "_trap", "_trap_address")

    def __init__(self, context: StoreContext, func: wasmtime.Func, nparams: int, result: str | None) -> None:
        self._context = context
        self._func = func  # owns the wasmtime_func_t at `_address`
        self._address = addressof(func._func)
        params = (ffi.wasmtime_val_t * max(nparams, 1))()
        for i in range(nparams):
            params[i].kind = _KIND_I32  # type: ignore[assignment]
        results = (ffi.wasmtime_val_t * 1)()
        self._arrays = (params, results)  # what the addresses below point into
        self._args = addressof(params)
        self._results = addressof(results)
        self._nresults = 0 if result is None else 1
        self._slots = [c_int32.from_address(self._args + i * _VAL + _OF) for i in range(nparams)]
        self._result = (c_int64 if result == "i64" else c_int32).from_address(self._results + _OF)
        self._trap = c_void_p()
        self._trap_address = addressof(self._trap)

    def __call__(self, *args: int) -> int:
        for slot, value in zip(self._slots, args, strict=True):
            slot.value = value
        error = _func_call(
            self._context.address, self._address, self._args, len(args), self._results, self._nresults,
            self._trap_address,
        )
        if error:
            maybe_raise_last_exn()  # a host function's Python exception comes first, as in wasmtime-py
            raise _error(error)
        if self._trap.value:
            trap = wasmtime.Trap._from_ptr(cast(self._trap.value, _TRAP))  # owns the trap from here
            self._trap.value = None
            maybe_raise_last_exn()
            raise trap
        return int(self._result.value)
