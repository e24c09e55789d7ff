"""`time.sleep` in slices, so a guest's deadline can stop it.

Wasmtime stops a guest at its deadline by interrupting running wasm. A WASI preview-2 sleep is one
long host call with no wasm running, so the host cannot stop it until it returns (core modules get
an interruptible `poll_oneoff` from the host; components cannot). Sleeping in short slices keeps
wasm running between them, so the deadline ends the invocation within one slice.
"""

from __future__ import annotations

import time

SLICE_S = 0.01
_wasi_sleep = time.sleep


def sliced_sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        _wasi_sleep(min(left, SLICE_S))


def install() -> None:
    time.sleep = sliced_sleep
