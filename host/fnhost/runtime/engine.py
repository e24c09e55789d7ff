"""The Wasmtime engines of a host (one per compiler tier): settings, the epoch ticker, the compile cache.

Every setting that changes generated code is part of `EngineSettings.cache_key()`, the compiler
included: a serialized artifact only loads into an engine configured the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version as _dist_version
from pathlib import Path

import wasmtime
import wasmtime.component
from wasmtime import _ffi as ffi

from .._fs import atomic_write

WASMTIME_VERSION = _dist_version("wasmtime")
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
CORE_HEADER = b"\x00asm\x01\x00\x00\x00"


CRANELIFT = "cranelift"  # the optimizing compiler: the code every version runs in the end
WINCH = "winch"  # Wasmtime's baseline compiler: ~6x faster to compile, ~1.8x slower code
_WINCH_STRATEGY = 2  # wasmtime_strategy_t: WASMTIME_STRATEGY_WINCH (Config.strategy refuses "winch")


@dataclass(frozen=True)
class EngineSettings:
    epoch_tick_ms: int = 5
    max_wasm_stack: int = 1 << 20  # deep recursion traps with "call stack exhausted"
    cranelift_opt_level: str = "speed"
    # Tiered compilation: wasm of at least this many bytes is compiled with Winch at deploy (the
    # 18 MB Python component: ~2.5 s instead of ~14 s), serves at once, and is recompiled with
    # Cranelift in the background; the Cranelift build replaces it when done. None: Cranelift only.
    baseline_min_bytes: int | None = 1 << 20

    def cache_key(self, compiler: str = CRANELIFT) -> str:
        """Names the settings that shape generated code (a Cranelift key is what it was before tiers)."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("epoch_tick_ms", "baseline_min_bytes")}
        raw = f"wasmtime={WASMTIME_VERSION};fuel=1;epoch=1;{sorted(settings.items())}"
        if compiler != CRANELIFT:
            raw += f";compiler={compiler}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def make_engine(settings: EngineSettings, compiler: str = CRANELIFT) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = settings.max_wasm_stack
    config.cranelift_opt_level = settings.cranelift_opt_level
    config.wasm_component_model = True
    if compiler == WINCH:
        ffi.wasmtime_config_strategy_set(config.ptr(), _WINCH_STRATEGY)
    elif compiler != CRANELIFT:
        raise ValueError(f"unknown compiler {compiler!r}; use {CRANELIFT!r} or {WINCH!r}")
    return wasmtime.Engine(config)


class EpochTicker:
    """One background thread per host that advances the epoch of each of its engines every `tick_ms`.

    Store deadlines are counted in ticks, so a wall-clock timeout costs no thread per call, and both
    compiler tiers see the same ticks.
    """

    def __init__(self, engines: Sequence[wasmtime.Engine], tick_ms: int) -> None:
        self.engines = list(engines)
        self.tick_ms = tick_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fnhost-epoch", daemon=True)
        self._thread.start()

    def ticks_for(self, timeout_ms: int) -> int:
        # +1: the current tick may be nearly over when the deadline is set.
        return -(-timeout_ms // self.tick_ms) + 1

    def _run(self) -> None:
        # Ticks follow the wall clock, not the number of wake-ups: on a loaded machine (a background
        # compile on every core) this thread wakes late, and counting wake-ups would stretch every
        # deadline. Late wake-ups catch up with the ticks that are due.
        interval = self.tick_ms / 1000
        start = time.monotonic()
        ticked = 0
        while not self._stop.wait(interval):
            due = int((time.monotonic() - start) / interval)
            while ticked < due:
                for engine in self.engines:
                    engine.increment_epoch()
                ticked += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


def is_component(wasm: bytes) -> bool:
    return wasm[:8] == COMPONENT_HEADER


class CompileCache:
    """Compiled artifacts on disk, keyed by wasm sha256 + engine settings + wasmtime version.

    Deserializing runs the artifact's native code as is, so nothing is loaded unless it is exactly
    what this host wrote: beside each `<sha256>.cwasm` lies `<sha256>.cwasm.sha256`, the digest of
    the artifact, checked before deserializing. A missing or different digest (a flipped bit, a torn
    or foreign file) means recompile and replace — never load. Writes go to a temp file in the same
    directory and are renamed into place (the artifact first, then its digest), so concurrent
    writers never leave a torn file that passes the check. The directories are 0700: only this
    user may place code here.
    """

    def __init__(
        self, root: Path, engine: wasmtime.Engine, settings: EngineSettings, compiler: str = CRANELIFT
    ) -> None:
        self.root = root / settings.cache_key(compiler)
        _private_dir(root)
        _private_dir(self.root)
        self.engine = engine

    def path_for(self, sha256: str) -> Path:
        return self.root / f"{sha256}.cwasm"

    def cached(self, sha256: str) -> bool:
        """An artifact whose digest checks out is on disk (it will load without compiling)."""
        return self._verified(self.path_for(sha256))

    def load(
        self, sha256: str, component: bool, wasm: Callable[[], bytes]
    ) -> tuple[wasmtime.Module | wasmtime.component.Component, bool]:
        """Return (compiled, was_cached); on a miss compile `wasm()` and store the artifact."""
        path = self.path_for(sha256)
        with _compiling(path):  # one compile per artifact in this process; the others wait and load it
            return self._load(path, component, wasm)

    def _load(
        self, path: Path, component: bool, wasm: Callable[[], bytes]
    ) -> tuple[wasmtime.Module | wasmtime.component.Component, bool]:
        if self._verified(path):
            try:
                if component:
                    return wasmtime.component.Component.deserialize_file(self.engine, str(path)), True
                return wasmtime.Module.deserialize_file(self.engine, str(path)), True
            except (wasmtime.WasmtimeError, ValueError):
                pass  # written by this host yet refused (another engine kind): recompile below
        code = wasm()
        compiled: wasmtime.Module | wasmtime.component.Component
        if component:
            compiled = wasmtime.component.Component(self.engine, code)
        else:
            compiled = wasmtime.Module(self.engine, code)
        artifact = bytes(compiled.serialize())
        atomic_write(path, artifact)
        atomic_write(_digest_path(path), hashlib.sha256(artifact).hexdigest().encode())
        return compiled, False

    @staticmethod
    def _verified(path: Path) -> bool:
        try:
            want = _digest_path(path).read_bytes().strip()
            with open(path, "rb") as f:
                have = hashlib.file_digest(f, "sha256").hexdigest().encode()
        except OSError:
            return False
        return hmac.compare_digest(want, have)

    def remove(self, sha256: str) -> None:
        path = self.path_for(sha256)
        path.unlink(missing_ok=True)
        _digest_path(path).unlink(missing_ok=True)


_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def _compiling(path: Path) -> Iterator[None]:
    with _locks_guard:
        lock = _locks.setdefault(path, threading.Lock())
    with lock:
        yield


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def monotonic_ms() -> float:
    return time.perf_counter() * 1000
