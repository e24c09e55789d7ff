"""Log lines from the guest, recorded with the invocation (bounded by limits.max_log_bytes).

A log call counts against the invocation's host-call budget like any other; `log.write` has no
error to return, so once the budget is spent lines are dropped (the log says so once)."""

from __future__ import annotations

from .base import Capability
from .errors import HostCallError
from .operations import Level, Lossy, operation
from .state import CallState


class LogCapability(Capability):
    interface = "log"

    @operation(fallible=False)
    def write(self, state: CallState, level: Level, message: Lossy) -> None:
        try:
            state.charge(len(message))
        except HostCallError as e:
            if not state.logs.budget_spent:
                state.logs.budget_spent = True
                state.logs.add(f"[fnhost] log lines dropped from here: {e.message}")
            return
        state.logs.add(f"[{level}] {message}")
