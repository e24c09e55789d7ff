"""Bulk conversion of `list<u8>` between Python `bytes` and wasmtime's component values.

wasmtime-py 50 converts a `list<u8>` one element at a time in Python (100 KB ≈ 0.4 s). Each element
is a 32-byte `wasmtime_component_val_t` (kind at offset 0, payload at offset 8), so the whole array
can be written with two strided slice assignments straight into the C-owned buffer, and read back
with one strided slice — no per-element Python work. Installed once, at import of
`fnhost.runtime`; it covers guest calls and host functions alike. Other list types keep the
library's own conversion.
"""

from __future__ import annotations

import ctypes
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types

VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)
_KIND_U8 = ffi.WASMTIME_COMPONENT_U8.value
_KIND_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_PAYLOAD_OFFSET = ffi.wasmtime_component_val_t.of.offset

_library_to_c = _types.ListType.convert_to_c
_library_from_c = _types.ListType.convert_from_c


def _view(address: int, size: int) -> memoryview:
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


def _bytes_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not isinstance(val, (bytes, bytearray, memoryview)) or not self._is_bytes():
        _library_to_c(self, store, val, ptr)
        return
    n = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        view = _view(ctypes.addressof(raw.data.contents), n * VAL_SIZE)
        view[0::VAL_SIZE] = bytes([_KIND_U8]) * n
        view[_PAYLOAD_OFFSET::VAL_SIZE] = val
    ptr.contents.kind = _KIND_LIST
    ptr.contents.of.list = raw


def _bytes_from_c(self: Any, c: Any) -> Any:
    if not self._is_bytes():
        return _library_from_c(self, c)
    try:
        n = c.of.list.size
        if n == 0:
            return b""
        return _view(ctypes.addressof(c.of.list.data.contents), n * VAL_SIZE)[
            _PAYLOAD_OFFSET::VAL_SIZE
        ].tobytes()
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


def install() -> None:
    """Idempotent. Refuses to patch a wasmtime whose value layout differs from the one checked."""
    if VAL_SIZE != 32 or _PAYLOAD_OFFSET != 8:
        return  # layout changed: keep the (slow, correct) library path
    _types.ListType.convert_to_c = _bytes_to_c  # type: ignore[method-assign]
    _types.ListType.convert_from_c = _bytes_from_c  # type: ignore[method-assign]
