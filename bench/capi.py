"""What each Wasmtime call of a warm core-module invocation costs: wasmtime-py's API next to fnhost's
own bindings (runtime/capi.py), side by side in one run.

    python bench/capi.py [--calls N]

Each pair runs on the same store and instance of the WAT echo (tests/wat_guests.py), alternating
A, B, A, B...; printed: the best of the repeats, per call, in µs.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

import wasmtime  # noqa: E402
import wat_guests  # noqa: E402

from fnhost import EngineSettings  # noqa: E402
from fnhost.runtime.capi import GuestFunc, GuestMemory, StoreContext  # noqa: E402
from fnhost.runtime.engine import WASMTIME_VERSION, make_engine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    args = ap.parse_args()
    engine = make_engine(EngineSettings())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_fuel(10**15)
    store.set_epoch_deadline(10**9)
    exports = linker.instantiate(store, wasmtime.Module(engine, wat_guests.ECHO)).exports(store)
    memory, alloc = exports["memory"], exports["fnhost_alloc"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(alloc, wasmtime.Func)
    context = StoreContext(store)
    guest_memory = GuestMemory(context, memory)
    guest_alloc = GuestFunc(context, alloc, 1, "i32")
    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "set fuel": (lambda: store.set_fuel(10**15), lambda: context.set_fuel(10**15)),
        "get fuel": (store.get_fuel, context.fuel),
        "set epoch deadline": (lambda: store.set_epoch_deadline(10**9), lambda: context.set_epoch_deadline(10**9)),
        "memory size": (lambda: memory.data_len(store), guest_memory.refresh),
        "memory base": (lambda: memory.data_ptr(store), lambda: guest_memory.base),  # cached with the size
        "call fnhost_alloc(0)": (lambda: alloc(store, 0), lambda: guest_alloc(0)),
    }
    print(f"fnhost bench/capi.py — wasmtime-py {WASMTIME_VERSION}, {args.calls} calls x 5 repeats, best per call")
    for name, (theirs, ours) in pairs.items():
        a: list[float] = []
        b: list[float] = []
        for _ in range(5):
            a.append(timeit.timeit(theirs, number=args.calls, timer=time.perf_counter))
            b.append(timeit.timeit(ours, number=args.calls, timer=time.perf_counter))
        wa, wb = min(a) / args.calls * 1e6, min(b) / args.calls * 1e6
        print(f"{name:<22} wasmtime-py {wa:6.2f} µs | fnhost capi {wb:6.2f} µs | ratio {wb / wa:5.2f}x")


if __name__ == "__main__":
    main()
