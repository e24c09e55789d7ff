"""What an invocation ends with: one outcome kind and the metered facts (`InvocationResult`), and
the checks a guest's output passes before anything leaves the host."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ..names import HTTP_TOKEN

if TYPE_CHECKING:
    from ..egress import Exchange


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


@dataclass
class RunResult:
    """What the sandbox hands back for one run; the invoker adds the invocation's facts."""

    outcome: Outcome
    output: bytes = b""
    response: HttpResponse | None = None
    error: str | None = None
    failed_message_ids: list[str] = field(default_factory=list)
    fuel_consumed: int = 0
    memory_used_bytes: int | None = None


class GuestFailure(Exception):
    """The handler ran and reported failure, or broke the contract (outcome GuestError)."""


MAX_RESPONSE_HEADERS = 200
MAX_RESPONSE_HEADER_BYTES = 64 * 1024
_TOKEN = HTTP_TOKEN.pattern
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def checked_response(response: HttpResponse) -> HttpResponse:
    """An HTTP response a server can send as is: a final status, header names that are tokens and
    values without control characters (no response splitting), all latin-1 as HTTP/1.1 needs.

    1xx are interim responses (100 Continue, 101 Switching Protocols): a server sends them before
    the final one, never instead of it, so a handler answering one has no response to send."""
    if not 200 <= response.status <= 599:
        kind = " (an interim 1xx status, not a final response)" if 100 <= response.status <= 199 else ""
        raise GuestFailure(f"handler returned HTTP status {response.status}{kind}; it must be 200..599")
    if len(response.headers) > MAX_RESPONSE_HEADERS:
        raise GuestFailure(f"handler returned {len(response.headers)} headers; at most {MAX_RESPONSE_HEADERS}")
    size = sum(len(name) + len(value) for name, value in response.headers)
    if size > MAX_RESPONSE_HEADER_BYTES:
        raise GuestFailure(f"handler returned {size} bytes of headers; at most {MAX_RESPONSE_HEADER_BYTES}")
    for name, value in response.headers:
        if not _TOKEN.match(name):
            raise GuestFailure(f"handler returned an invalid header name {name[:64]!r}")
        if _BAD_VALUE.search(value) or not _latin1(value):
            raise GuestFailure(f"header {name!r} has a value with control or non-latin-1 characters")
    return response


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise GuestFailure(f"output of {size} bytes is over limits.max_response_bytes ({limit})")


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
    outbound: list[Exchange] = field(default_factory=list)  # outbound HTTP requests, one per hop
    chain_depth: int = 0  # invocations that led to this one (fnhost.chains)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def billed_ms(self) -> int:
        return billed_ms(self.duration_ms)

    @property
    def report(self) -> str:
        """A Lambda-style REPORT line."""
        return report_line(
            self.invocation_id, self.duration_ms, self.memory_limit_mb, self.memory_used_bytes, self.fuel_consumed,
            self.outcome,
        )


def billed_ms(duration_ms: float) -> int:
    return max(1, math.ceil(duration_ms))


def report_line(
    invocation_id: str,
    duration_ms: float,
    memory_limit_mb: int,
    memory_used_bytes: int | None,
    fuel_consumed: int,
    outcome: Outcome,
) -> str:
    """An invocation's Lambda-style REPORT line (`InvocationResult.report`, and its record's)."""
    used = "n/a" if memory_used_bytes is None else f"{math.ceil(memory_used_bytes / 2**20)} MB"
    return (
        f"REPORT RequestId: {invocation_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory_limit_mb} MB\t"
        f"Max Memory Used: {used}\tFuel: {fuel_consumed}\tOutcome: {outcome.value}"
    )
