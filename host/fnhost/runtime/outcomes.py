"""What an invocation ends with: one outcome kind and the metered facts (`InvocationResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    FUEL_EXHAUSTED = "fuel_exhausted"
    MEMORY_LIMIT = "memory_limit"
    GUEST_TRAP = "guest_trap"
    GUEST_ERROR = "guest_error"
    DENIED = "denied"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: str
    function: str
    version: int
    trigger: str  # "invoke" | "http"
    outcome: Outcome
    started_at: float  # unix seconds
    duration_ms: float
    fuel_consumed: int
    memory_used_bytes: int | None  # the instance's memory at the end; None when the host cannot see it
    memory_limit_mb: int
    output: bytes = b""
    response: HttpResponse | None = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    failed_message_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.duration_ms))

    @property
    def report(self) -> str:
        """A Lambda-style REPORT line."""
        used = "n/a" if self.memory_used_bytes is None else f"{math.ceil(self.memory_used_bytes / 2**20)} MB"
        return (
            f"REPORT RequestId: {self.invocation_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_ms} ms\tMemory Size: {self.memory_limit_mb} MB\t"
            f"Max Memory Used: {used}\tFuel: {self.fuel_consumed}\tOutcome: {self.outcome.value}"
        )
