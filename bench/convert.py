"""Lowering a call's arguments: fnhost's codecs (runtime/convert.py) next to wasmtime-py's own conversion.

    python bench/convert.py [--rounds N]

The Python hello component's own export types, read from the artifact the deploy compiled: for a
queue batch of 10 messages (`handle-event`) and a small HTTP request (`handle-http`, three
headers), the context record and the argument are lowered into value slots and freed again —
once through fnhost's codecs, once through wasmtime-py's `ValType.convert_to_c` — interleaved,
`--rounds` rounds of 500 each side. Printed per shape: the median per call of each side and their
ratio (below 1.00x: fnhost is faster).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

import wasmtime  # noqa: E402
import wasmtime.component  # noqa: E402
from wasmtime import _ffi as ffi  # noqa: E402
from wasmtime.component import Record, Variant  # noqa: E402
from wasmtime.component._types import FuncType  # noqa: E402

from fnhost import EngineSettings, Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.runtime import convert  # noqa: E402
from fnhost.runtime.engine import CRANELIFT, CompileCache, make_engine  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
BATCH = 500


def record(**fields: Any) -> Record:
    out = Record()
    for name, value in fields.items():
        setattr(out, name.replace("_", "-"), value)
    return out


def export_params(component: wasmtime.component.Component, engine: wasmtime.Engine) -> dict[str, list[Any]]:
    """The parameter types of the component's top-level function exports, by export name."""
    exports = component.type.exports(engine).items()
    return {name: [ty for _, ty in item.ty.params] for name, item in exports if isinstance(item.ty, FuncType)}


def lowering(lowers: list[Callable[[Any, Any, Any], None]], values: list[Any], by_pointer: bool) -> Callable[[], None]:
    store = None  # strings, records, lists and variants never touch the store

    def once() -> None:
        slots = (ffi.wasmtime_component_val_t * len(values))()
        for i, (lower, value) in enumerate(zip(lowers, values, strict=True)):
            lower(store, value, ctypes.pointer(slots[i]) if by_pointer else slots[i])
        for i in range(len(values)):
            ffi.wasmtime_component_val_delete(ctypes.byref(slots[i]))

    return once


def per_call(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    for _ in range(BATCH):
        fn()
    return (time.perf_counter() - started) / BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    built = build_guest(ROOT / "guests" / "python" / "hello")
    wasm = built.wasm_path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp, Host(Path(tmp) / "data", cache_dir=CACHE / "compiled") as host:
        host.deploy("hello", wasm, built.manifest.to_dict())
        host.wait_for_tier_up()
        settings = EngineSettings()  # the Host's (it was made without engine_settings)
        engine = make_engine(settings)
        path = CompileCache(CACHE / "compiled", engine, settings, CRANELIFT).path_for(hashlib.sha256(wasm).hexdigest())
        component = wasmtime.component.Component.deserialize_file(engine, str(path))
    params = export_params(component, engine)
    ctx = record(invocation_id="inv_0123456789abcdef", function_name="hello", function_version="1",
                 deadline_unix_ms=1_800_000_000_000, memory_limit_mb=128)  # fmt: skip
    messages = [record(id=f"01J{i:023d}", queue="orders", body=f"message {i}".encode(), receive_count=1)
                for i in range(10)]  # fmt: skip
    shapes = {
        "queue batch of 10 (handle-event)": ("handle-event", [ctx, Variant("queue-batch", messages)]),
        "HTTP GET, 3 headers (handle-http)": ("handle-http", [ctx, record(
            method="GET", path_with_query="/hello?name=x", body=b"",
            headers=[("host", "127.0.0.1"), ("user-agent", "wrk/4.2"), ("accept", "*/*")])]),
    }  # fmt: skip
    print(f"lowering a call's arguments, {args.rounds} rounds x {BATCH} calls each side, interleaved; median per call")
    for label, (export, values) in shapes.items():
        types = params[export]
        ours = lowering([convert.codec(ty).lower for ty in types], values, by_pointer=False)
        theirs = lowering([ty.convert_to_c for ty in types], values, by_pointer=True)
        ours(), theirs()
        a: list[float] = []
        b: list[float] = []
        for _ in range(args.rounds):
            a.append(per_call(ours))
            b.append(per_call(theirs))
        fa, fb = statistics.median(a) * 1e6, statistics.median(b) * 1e6
        print(f"{label:<36} fnhost {fa:7.1f} us | wasmtime-py {fb:7.1f} us | ratio {fa / fb:4.2f}x")


if __name__ == "__main__":
    main()
