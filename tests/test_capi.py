"""fnhost's own bindings of the Wasmtime C API calls on the invocation path (runtime/capi.py)."""

from __future__ import annotations

import ctypes

import pytest
from wasmtime import _bindings

from fnhost.runtime import capi


@pytest.mark.parametrize("name", sorted(capi.SIGNATURES))
def test_prototypes_match_wasmtime_py(name: str) -> None:
    # wasmtime-py's bindings are generated from wasmtime.h: the same arity, pointers where it has
    # pointers, the same integer widths and a result of the same kind
    restype, argtypes = capi.SIGNATURES[name]
    theirs = getattr(_bindings, f"_{name}")
    assert len(argtypes) == len(theirs.argtypes)
    for ours, their in zip(argtypes, theirs.argtypes, strict=True):
        if ours is ctypes.c_void_p:
            assert issubclass(their, ctypes._Pointer), (name, their)
        else:
            assert ctypes.sizeof(ours) == ctypes.sizeof(their), (name, ours, their)
    if restype is None:
        assert theirs.restype is None
    elif restype is ctypes.c_void_p:
        assert issubclass(theirs.restype, ctypes._Pointer), name
    else:
        assert ctypes.sizeof(restype) == ctypes.sizeof(theirs.restype)
