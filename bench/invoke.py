"""Invoke latency and the data path, measured side by side in one run.

    python bench/invoke.py [--rounds N]

Prints, for the Python hello component and a tiny core module: fresh-instance invoke latency
through `Host` next to raw wasmtime-py doing the same (new Store with fuel and an epoch deadline,
WASI, instantiate, call) — the ratio is fnhost's overhead; warm-reuse latency; and body round trips
(100 KB, 1 MB; fresh, and warm alternated with it) through fnhost's body channels (a component's
`fnhost:function/body`, a core module's linear memory), the 100 KB one next to plain wasmtime-py's
own per-element conversion of the same call.
Runs are interleaved (A, B, A, B...) so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

import wasmtime  # noqa: E402
import wasmtime.component  # noqa: E402
import wat_guests  # noqa: E402
from wasmtime.component import Record, Variant  # noqa: E402

from fnhost import EngineSettings, FnhostError, Host, Outcome  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.capabilities import CAPABILITIES  # noqa: E402
from fnhost.capabilities.base import CONTRACT_VERSIONS, PACKAGE  # noqa: E402
from fnhost.runtime.engine import CRANELIFT, WASMTIME_VERSION, CompileCache, make_engine  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


def side_by_side(a: Callable[[], object], b: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    for _ in range(max(3, rounds // 10)):  # warm up both
        a()
        b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        t = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t)
    return ta, tb


def row(label: str, ta: list[float], tb: list[float], name_a: str, name_b: str) -> None:
    a50, b50 = pct(ta, 0.5), pct(tb, 0.5)
    print(
        f"{label:<34} {name_a} p50 {a50:8.3f} ms  p99 {pct(ta, 0.99):8.3f} | "
        f"{name_b} p50 {b50:8.3f} ms  p99 {pct(tb, 0.99):8.3f} | ratio {a50 / b50:5.2f}x"
    )


class RawComponent:
    """Plain wasmtime-py: what a user would write to run the component once per request."""

    def __init__(self, engine: wasmtime.Engine, path: Path) -> None:
        self.engine = engine  # the host's settings, so the host's compiled artifact loads into it
        self.component = wasmtime.component.Component.deserialize_file(self.engine, str(path))
        self.linker = wasmtime.component.Linker(self.engine)
        self.linker.add_wasip2()
        # every function of every contract version does nothing, but `body.set-output-stdout`: an
        # output over 32 KiB comes back as the next bytes the guest writes to stdout (a file here)
        self.stdout = Path(tempfile.mkdtemp()) / "stdout"
        self.output_on_stdout = False

        def set_output_stdout(*_: object) -> None:
            self.output_on_stdout = True

        with self.linker.root() as root:
            for cap in CAPABILITIES:
                for version in CONTRACT_VERSIONS:
                    if cap.operations_in(version):
                        with root.add_instance(f"{PACKAGE}/{cap.interface}@{version}") as inst:
                            for op in cap.operations_in(version):
                                stub = set_output_stdout if op.name == "set-output-stdout" else lambda *_: None
                                inst.add_func(op.name, stub)
        self.export = self.component.get_export_index("handle-event")
        self.http_export = self.component.get_export_index("handle-http")

    def _instance(self) -> tuple[wasmtime.Store, wasmtime.component.Instance]:
        store = wasmtime.Store(self.engine)
        store.set_fuel(20_000_000_000)
        store.set_epoch_deadline(1000)
        wasi = wasmtime.WasiConfig()
        wasi.stdout_file = str(self.stdout)
        store.set_wasi(wasi)
        self.output_on_stdout = False
        return store, self.linker.instantiate(store, self.component)

    def _output(self, inline: bytes) -> bytes:
        return self.stdout.read_bytes() if self.output_on_stdout else bytes(inline)

    def invoke(self, payload: bytes) -> bytes:
        store, instance = self._instance()
        func = instance.get_func(store, self.export)
        result = func(store, self._ctx(), Variant("invoke", payload))
        func.post_return(store)
        return self._output(result.output)

    def invoke_http(self, body: bytes) -> bytes:
        store, instance = self._instance()
        func = instance.get_func(store, self.http_export)
        request = Record()
        for k, v in {"method": "POST", "path-with-query": "/echo", "headers": [], "body": body}.items():
            setattr(request, k, v)
        result = func(store, self._ctx(), request)
        func.post_return(store)
        return self._output(result.body)

    @staticmethod
    def _ctx() -> Record:
        ctx = Record()
        for k, v in {
            "invocation-id": "x",
            "function-name": "hello",
            "function-version": "1",
            "deadline-unix-ms": 0,
            "memory-limit-mb": 128,
        }.items():
            setattr(ctx, k, v)
        return ctx


class RawCore:
    def __init__(self, engine: wasmtime.Engine, wasm: bytes) -> None:
        self.engine = engine
        self.module = wasmtime.Module(engine, wasm)
        self.linker = wasmtime.Linker(engine)
        self.linker.define_wasi()

    def invoke(self, payload: bytes) -> bytes:
        store = wasmtime.Store(self.engine)
        store.set_fuel(20_000_000_000)
        store.set_epoch_deadline(1000)
        store.set_wasi(wasmtime.WasiConfig())
        instance = self.linker.instantiate(store, self.module)
        ex = instance.exports(store)
        ptr = ex["fnhost_alloc"](store, len(payload))
        ex["memory"].write(store, payload, ptr)
        packed = ex["fnhost_handle_event"](store, ptr, len(payload))
        return ex["memory"].read(store, packed >> 32, (packed >> 32) + (packed & 0xFFFFFFFF))


EXTISM_ECHO = """(module
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (import "extism:host/env" "input_offset" (func $off (result i64)))
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"""


def extism_plugin() -> Callable[[bytes], bytes] | None:
    """Extism's Python SDK (its own Rust runtime, a warm plugin) running an echo in its ABI."""
    try:
        import extism
    except ImportError:
        return None
    plugin = extism.Plugin(bytes(wasmtime.wat2wasm(EXTISM_ECHO)), wasi=False)
    return lambda data: bytes(plugin.call("echo", data))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    print(
        f"fnhost bench/invoke.py — wasmtime-py {WASMTIME_VERSION}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, rounds={args.rounds}"
    )
    hello = build_guest(ROOT / "guests" / "python" / "hello")
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(Path(tmp) / "data", cache_dir=CACHE / "compiled")
        wasm = hello.wasm_path.read_bytes()
        host.deploy("hello", wasm, hello.manifest)
        host.deploy("warm", wasm, {**hello.manifest.to_dict(), "name": "warm", "limits": {"instance_reuse": 1000}})
        host.deploy("core", wat_guests.ECHO, {"name": "core", "limits": {"memory_mb": 64}})
        host.deploy("corewarm", wat_guests.ECHO, {"name": "corewarm", "limits": {"memory_mb": 64}})
        settings = EngineSettings()  # the Host's (it was made without engine_settings)
        engine = make_engine(settings)
        cache = CompileCache(CACHE / "compiled", engine, settings, CRANELIFT)
        raw = RawComponent(engine, cache.path_for(hashlib.sha256(wasm).hexdigest()))  # what the deploy compiled
        raw_core = RawCore(make_engine(settings), wat_guests.ECHO)
        payload = b'{"name": "bench"}'
        assert host.invoke("hello", payload).outcome is Outcome.OK
        assert raw.invoke(payload) == host.invoke("hello", payload).output

        print("\n== fresh instance per invoke (fnhost Host.invoke vs raw wasmtime-py) ==")
        ta, tb = side_by_side(lambda: host.invoke("hello", payload), lambda: raw.invoke(payload), args.rounds)
        row("python hello component", ta, tb, "fnhost", "raw")
        ta, tb = side_by_side(lambda: host.invoke("core", payload), lambda: raw_core.invoke(payload), args.rounds)
        row("tiny core module (WAT echo)", ta, tb, "fnhost", "raw")

        print("\n== hello in every guest language: fresh instance per invoke, through fnhost ==")
        languages = {}
        for lang in ("python", "rust", "go", "c"):
            try:
                built = build_guest(ROOT / "guests" / lang / "hello")
            except FnhostError as e:  # a toolchain missing on this machine: say so, measure the rest
                print(f"{lang:<8} skipped: {e}")
                continue
            name = f"hello-{lang}"
            host.deploy(name, built.wasm_path.read_bytes(), {**built.manifest.to_dict(), "name": name})
            assert host.invoke(name, payload).output.replace(b" ", b"") == b'{"message":"Hello,bench!"}'
            languages[lang] = [0.0] * args.rounds
        for i in range(args.rounds):  # interleaved, so noise hits every language alike
            for lang, samples in languages.items():
                t = time.perf_counter()
                host.invoke(f"hello-{lang}", payload)
                samples[i] = time.perf_counter() - t
        for lang, samples in languages.items():
            print(f"{lang:<8} p50 {pct(samples, 0.5):8.3f} ms  p99 {pct(samples, 0.99):8.3f} ms")

        print("\n== warm reuse (instance_reuse=1000) vs fresh, both through fnhost ==")
        ta, tb = side_by_side(lambda: host.invoke("warm", payload), lambda: host.invoke("hello", payload), args.rounds)
        row("python hello component", ta, tb, "warm", "fresh")

        print("\n== body round trip: HTTP POST /echo into the Python guest and back ==")
        for size in (100_000, 1_000_000):
            body = os.urandom(size)
            r = host.invoke_http("hello", "POST", "/echo", [], body)
            assert r.outcome is Outcome.OK and r.response is not None and r.response.body == body, r.error
            r = host.invoke_http("warm", "POST", "/echo", [], body)
            assert r.outcome is Outcome.OK and r.response is not None and r.response.body == body, r.error
            n = max(5, args.rounds // (10 if size < 500_000 else 40))
            fast, warm = [0.0] * n, [0.0] * n
            for i in range(n):  # fresh and warm alternated
                t = time.perf_counter()
                host.invoke_http("hello", "POST", "/echo", [], body)
                fast[i] = time.perf_counter() - t
                t = time.perf_counter()
                host.invoke_http("warm", "POST", "/echo", [], body)
                warm[i] = time.perf_counter() - t
            slow = []
            if size <= 100_000:  # plain wasmtime-py, per-element conversion: 1 MB would take ~4 s a round
                assert raw.invoke_http(body) == body
                for _ in range(3):
                    t = time.perf_counter()
                    raw.invoke_http(body)
                    slow.append(time.perf_counter() - t)
            label = f"{size // 1000} KB python component"
            if slow:
                row(label, fast, slow, "fnhost", "raw")
            else:
                print(f"{label:<34} fnhost p50 {pct(fast, 0.5):8.3f} ms  p99 {pct(fast, 0.99):8.3f}")
            print(f"{label + ', warm':<34} fnhost p50 {pct(warm, 0.5):8.3f} ms  p99 {pct(warm, 0.99):8.3f}")
        print("\n== warm core-module call: fnhost (instance_reuse) vs Extism, the same tiny echo ==")
        extism_echo = extism_plugin()
        if extism_echo is None:
            print("skipped: `pip install extism==1.1.1` to compare (a benchmark peer, not a dependency)")
        else:
            host.deploy("coreecho", wat_guests.ECHO, {"name": "coreecho", "limits": {"memory_mb": 64, "instance_reuse": 100_000}})
            assert host.invoke("coreecho", payload).output.endswith(payload) and extism_echo(payload) == payload
            ta, tb = side_by_side(lambda: host.invoke("coreecho", payload), lambda: extism_echo(payload), args.rounds * 5)
            row("warm tiny core module (WAT echo)", ta, tb, "fnhost", "extism")

        print("\n== body round trip through a core module (linear memory) ==")
        for size in (100_000, 1_000_000):
            body = os.urandom(size)
            n = max(10, args.rounds // 5)
            ta, tb = side_by_side(lambda b=body: host.invoke("core", b), lambda b=body: raw_core.invoke(b), n)
            row(f"{size // 1000} KB core module", ta, tb, "fnhost", "raw")
        host.close()


if __name__ == "__main__":
    main()
