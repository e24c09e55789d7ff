"""Running one invocation in a Wasmtime store: the linkers, and the steps of one run.

Per host and compiler tier (`Tier`): one engine, one component linker and one core linker with every
capability linked once.
Per function version: a `Prepared` (prepare.py). Per invocation: a fresh store with the version's
limits (limits.py) and a fresh instance — or, with `instance_reuse`, a warm one of the same version
— then the handler call (component_call.py or core_call.py) and the outcome (limits.classify/refine).
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import wasmtime
import wasmtime.component

from ..capabilities.base import CallState, Capability, current_state, set_current_state
from ..capabilities.body import INLINE_MAX, INPUT_FILE
from ..errors import InvalidWasm
from ..manifest import Manifest
from . import convert
from .component_call import call_component
from .core_call import CoreExports, call_core
from .engine import EpochTicker
from .limits import Instance, Stdio, classify, core_memory_size, first_line, new_store, refine
from .outcomes import GuestFailure, Outcome, RunResult
from .prepare import Call, Prepared
from .wasi_poll import link_interruptible_poll


class Tier:
    """One compiler tier: its engine and the linkers with every capability linked once."""

    def __init__(self, compiler: str, engine: wasmtime.Engine, capabilities: Sequence[Capability]) -> None:
        self.compiler = compiler
        self.engine = engine
        self.component_linker = wasmtime.component.Linker(engine)
        self.component_linker.add_wasip2()
        with convert.HostLinkerInstance.root_of(self.component_linker) as root:
            for cap in capabilities:
                cap.link_component(root)
        self.core_linker = wasmtime.Linker(engine)
        self.core_linker.define_wasi()
        # WASI sleeps block in the host, where epochs cannot interrupt them: this poll_oneoff waits
        # at most until the invocation's deadline (must be linked before any instantiate_pre).
        link_interruptible_poll(
            self.core_linker, lambda: current_state().deadline, lambda: current_state().wasi_clock_origin_ns
        )
        for cap in capabilities:
            cap.link_core(self.core_linker)


class Sandbox:
    """Runs prepared versions. `engines` maps each compiler tier to its engine (the first one is
    the default); a version runs in the tier its code was compiled for (`Prepared.compiler`)."""

    def __init__(
        self, engines: Mapping[str, wasmtime.Engine], ticker: EpochTicker, capabilities: Sequence[Capability]
    ) -> None:
        self.tiers = {compiler: Tier(compiler, engine, capabilities) for compiler, engine in engines.items()}
        self.default = next(iter(self.tiers))
        self.ticker = ticker
        # stdio of this sandbox's stores that Wasmtime still holds (its callbacks keep them alive)
        self._stdio: weakref.WeakSet[Stdio] = weakref.WeakSet()

    def prepare(
        self, name: str, version: int, manifest: Manifest, compiled: Any, compiler: str | None = None
    ) -> Prepared:
        tier = self.tiers[compiler or self.default]
        prepared = Prepared(name, version, manifest, compiled, tier.core_linker, tier.compiler)
        if prepared.component:
            self._trial_instantiate(tier, prepared)
        return prepared

    def _trial_instantiate(self, tier: Tier, prepared: Prepared) -> None:
        """Instantiate once at deploy, so a component importing what fnhost lacks fails the deploy."""
        trial = new_store(tier.engine, prepared)
        self._stdio.add(trial.stdio)
        store = trial.store
        store.set_fuel(prepared.limits.fuel)
        store.set_epoch_deadline(self.ticker.ticks_for(prepared.limits.timeout_ms))
        try:
            tier.component_linker.instantiate(store, prepared.compiled)
        except wasmtime.WasmtimeError as e:
            raise InvalidWasm(f"component cannot be instantiated by fnhost: {first_line(e)}") from None

    def run(self, prepared: Prepared, call: Call, state: CallState) -> RunResult:
        limits = prepared.limits
        tier = self.tiers[prepared.compiler]
        warm = prepared.take_warm()
        set_current_state(state)
        convert.signatures.cache = prepared.host_signatures
        fuel_set = 0
        try:
            if warm is None:
                # A store that may move a large body gets the channels for it: a fresh one when its input is
                # large (a large output is likely then), a warm one always (it pays for them once).
                channels = prepared.takes_bodies and (len(call.payload) > INLINE_MAX or limits.instance_reuse > 0)
                warm = new_store(tier.engine, prepared, input_dir=channels, stdout_pipe=channels)
                self._stdio.add(warm.stdio)
            context = warm.context
            state.input_dir = warm.input_dir
            warm.stdio.attach(state)
            context.set_fuel(limits.fuel)
            fuel_set = limits.fuel
            context.set_epoch_deadline(self.ticker.ticks_for(limits.timeout_ms))
            state.deadline = time.monotonic() + limits.timeout_ms / 1000
            state.wasi_clock_origin_ns = warm.wasi_clock_origin_ns
            if warm.instance is None:
                self._instantiate(tier, prepared, warm)
            if call.kind not in prepared.exports:
                raise GuestFailure(f"function does not export a {call.kind} handler")
            if warm.exports is None:  # a component (a core instance has its exports once instantiated)
                if warm.stdio.pipe is not None:
                    state.logs.before_line = warm.stdio.sync
                result = call_component(prepared, warm.store, warm.instance, call, state)
            else:
                result = call_core(prepared, warm.exports, call)
        except GuestFailure as e:
            result = RunResult(Outcome.GUEST_ERROR, error=str(e))
        except wasmtime.Trap as e:
            result = classify(prepared, warm, e)
        except wasmtime.WasmtimeError as e:
            result = classify(prepared, warm, e)
        finally:
            set_current_state(None)
            state.end()
            convert.signatures.cache = None
            if warm is not None:
                warm.stdio.sync()  # what it printed before it trapped or returned is in its logs
                warm.stdio.attach(None)
                if warm.input_dir is not None:  # the next call never sees this one's input
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(warm.input_dir, INPUT_FILE))
            state.logs.flush()
        if warm is not None and fuel_set:
            try:
                result.fuel_consumed = fuel_set - warm.context.fuel()
            except wasmtime.WasmtimeError:
                result.fuel_consumed = fuel_set
        if result.memory_used_bytes is None:  # a core call that returned has set it already
            result.memory_used_bytes = core_memory_size(warm)
        refine(prepared, result, state)
        if result.outcome is Outcome.OK and warm is not None and limits.instance_reuse:
            warm.uses += 1
            prepared.give_back(warm)
        return result

    def wait_released(self, timeout: float) -> bool:
        """Wait until Wasmtime let go of every store's stdio callbacks (dropped stores release them
        from its I/O threads, a little later). A process that exits before would have those threads
        call into a finalizing interpreter: an abort at exit. Call after dropping the warm instances."""
        deadline = time.monotonic() + timeout
        while len(self._stdio) and time.monotonic() < deadline:
            time.sleep(0.005)
        return not len(self._stdio)

    def _instantiate(self, tier: Tier, prepared: Prepared, warm: Instance) -> None:
        if prepared.component:
            warm.instance = tier.component_linker.instantiate(warm.store, prepared.compiled)
            return
        warm.instance = prepared.pre.instantiate(warm.store)
        warm.exports = CoreExports(warm.context, warm.instance, prepared)
        if warm.exports.initialize is not None:
            warm.exports.initialize()


__all__ = ["Call", "Prepared", "RunResult", "Sandbox"]
