"""One function version made ready to run, and what to run in it.

`Prepared` holds everything that does not change between invocations of a version: the compiled
code, its export indices, the call signatures (read once, `convert.Signature`), the core
`InstancePre`, and the pool of warm instances when `limits.instance_reuse` is set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import wasmtime
import wasmtime.component

from ..capabilities.body import INTERFACE as BODY_INTERFACE
from ..errors import InvalidWasm
from ..manifest import Manifest
from . import abi
from .convert import Signature
from .core_call import CORE_HANDLER_EXPORTS, I32, I64, check_signature
from .limits import Instance, first_line

COMPONENT_HANDLERS = {"http": "handle-http", "event": "handle-event"}


@dataclass
class Call:
    """What to run: the HTTP handler with a request, or the event handler with an event (`payload`
    for a direct invoke, else `event`: a queue batch or a schedule tick)."""

    kind: str  # "http" | "event"
    ctx: abi.Context
    payload: bytes = b""
    event: abi.QueueBatch | abi.ScheduleTick | abi.BlobEvent | None = None
    method: str = "GET"
    path: str = "/"
    headers: list[tuple[str, str]] = field(default_factory=list)


class Prepared:
    """One function version, ready to run: everything that does not change between invocations."""

    def __init__(
        self, name: str, version: int, manifest: Manifest, compiled: Any, core_linker: wasmtime.Linker, compiler: str
    ) -> None:
        self.name = name
        self.compiler = compiler  # the tier whose engine compiled `compiled` (engine.CRANELIFT/WINCH)
        self.version = version
        self.manifest = manifest
        self.limits = manifest.limits
        self.compiled = compiled
        self.component = isinstance(compiled, wasmtime.component.Component)
        self.env = list(manifest.env.items())
        self._warm: list[Instance] = []
        self._lock = threading.Lock()
        self.exports: dict[str, Any] = {}
        # components: export signatures by call kind, and host-function signatures by host function
        # (this version's import types), both filled on first use
        self.signatures: dict[str, Signature] = {}
        self.host_signatures: dict[int, Signature] = {}
        self.takes_bodies = False  # imports fnhost:function/body: large bodies travel outside the record
        if self.component:
            self.takes_bodies = BODY_INTERFACE in compiled.type.imports(core_linker.engine)
            for kind, export in COMPONENT_HANDLERS.items():
                idx = compiled.get_export_index(export)
                if idx is not None:
                    self.exports[kind] = idx
            if not self.exports:
                raise InvalidWasm(
                    "component exports neither handle-http nor handle-event; build it against the "
                    "world `function` in sdk/wit/fnhost.wit"
                )
        else:
            names = {e.name for e in compiled.exports}
            missing = [n for n in ("memory", "fnhost_alloc") if n not in names]
            if missing:
                raise InvalidWasm(f"core module does not export {', '.join(missing)}; see docs/abi.md (Guest exports)")
            self.exports = {k: v for k, v in CORE_HANDLER_EXPORTS.items() if v in names}
            if not self.exports:
                raise InvalidWasm("core module exports neither fnhost_handle_http nor fnhost_handle_event")
            if not any(e.name == "memory" and isinstance(e.type, wasmtime.MemoryType) for e in compiled.exports):
                raise InvalidWasm("core module's export `memory` is not a memory; see docs/abi.md (Guest exports)")
            check_signature(compiled, "fnhost_alloc", [I32], [I32])
            for export in self.exports.values():
                check_signature(compiled, export, [I32, I32], [I64])
            self.initialize = "_initialize" in names
            if self.initialize:
                check_signature(compiled, "_initialize", [], [])
            try:
                self.pre = core_linker.instantiate_pre(compiled)
            except wasmtime.WasmtimeError as e:
                raise InvalidWasm(f"core module imports something fnhost does not provide: {first_line(e)}") from None

    # warm instances --------------------------------------------------------------------------
    # `warm_pool` (set by the invoker: fnhost.warm.WarmPool) is told of every instance going idle
    # and may refuse it or evict others (`discard_warm`); the memory policy lives there, not here.
    warm_pool: Any = None

    def take_warm(self) -> Instance | None:
        if not self.limits.instance_reuse:
            return None
        with self._lock:
            warm = self._warm.pop() if self._warm else None
        if warm is not None and self.warm_pool is not None:
            self.warm_pool.taken(warm)
        return warm

    def give_back(self, warm: Instance) -> None:
        if warm.uses >= self.limits.instance_reuse:
            return
        with self._lock:
            if len(self._warm) >= self.limits.max_concurrency:
                return
            self._warm.append(warm)
        if self.warm_pool is not None and not self.warm_pool.admit(self, warm):
            self.discard_warm(warm)

    def discard_warm(self, warm: Instance) -> None:
        with self._lock:
            self._warm = [w for w in self._warm if w is not warm]

    def drop_warm(self) -> None:
        with self._lock:
            dropped, self._warm = self._warm, []
        for warm in dropped:
            if self.warm_pool is not None:
                self.warm_pool.taken(warm)
