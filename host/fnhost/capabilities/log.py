"""Log lines from the guest, recorded with the invocation (bounded by limits.max_log_bytes).

A log call counts against the invocation's host-call budget like any other; `log.write` has no
error to return, so once the budget is spent lines are dropped (the log says so once)."""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime import Linker
from wasmtime.component import LinkerInstance

from ..manifest import Manifest
from .base import I32, GuestMemory, HostCallError, current_state

INTERFACE = "fnhost:function/log@0.1.0"
LEVELS = ("debug", "info", "warn", "error")


class LogCapability:
    name = "log"

    def check_grants(self, manifest: Manifest) -> None:
        """Logging needs no grant."""

    def write(self, level: str, message: str) -> None:
        state = current_state()
        try:
            state.charge(len(message))
        except HostCallError as e:
            if not state.logs.budget_spent:
                state.logs.budget_spent = True
                state.logs.add(f"[fnhost] log lines dropped from here: {e.message}")
            return
        state.logs.add(f"[{level}] {message}")

    def link_component(self, root: LinkerInstance) -> None:
        def write(_store: Any, level: str, message: str) -> None:
            self.write(level, message)

        with root.add_instance(INTERFACE) as iface:
            iface.add_func("write", write)

    def link_core(self, linker: Linker) -> None:
        def log_write(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
            # never copy more than the log can keep: a huge length costs the host nothing
            length = min(length & 0xFFFFFFFF, current_state().logs.max_bytes)
            try:
                message = GuestMemory(caller).read(ptr, length).decode("utf-8", "replace")
            except HostCallError as e:
                message = f"(unreadable log message: {e.message})"
            self.write(LEVELS[level] if 0 <= level < len(LEVELS) else "info", message)

        linker.define_func(
            "fnhost", "log_write", wasmtime.FuncType([I32, I32, I32], []), log_write, access_caller=True
        )
