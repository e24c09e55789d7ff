"""What host functions see during one invocation: its call state (grants, budget, logs, the core
ABI's pending result) and, for core modules, bounds-checked access to the guest's memory."""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import wasmtime

from .errors import ErrorKind, HostCallError

if TYPE_CHECKING:
    from ..egress import Exchange
    from ..stores.errors import ChainTooDeep
    from .base import VersionGrants


class LogMemory:
    """Bytes of log lines that every running invocation of one host holds in memory together, bounded.

    Each `LogBuffer` takes its lines' bytes from here as it grows and gives them back when its
    invocation ends, so N invocations that each log up to `limits.max_log_bytes` (at most 64 MiB) hold
    at most `max_bytes` together, not N x 64 MiB."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.max_bytes:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


LINE_OVERHEAD = 56
"""Bytes a log line costs beyond its text: a CPython str object's header and its list slot."""


class LogBuffer:
    """Log lines of one invocation, bounded in bytes; what does not fit is dropped with one marker.

    A line counts its UTF-8 bytes, its newline and `LINE_OVERHEAD` (what the host holds per line once
    the lines are a list of strings: the invocation's result and record), so a guest that logs a
    million one-byte lines is held to the cap like one that logs long ones, not to 58 times it. The
    lines are kept as UTF-8 in one buffer while the invocation runs, and a write to stdout or stderr
    is cut to what can still fit before it is split into lines. With a
    `LogMemory`, the bytes also come out of the host's total for all running invocations; `release`
    gives them back (the invoker calls it when the invocation ends)."""

    def __init__(self, max_bytes: int, memory: LogMemory | None = None) -> None:
        self.max_bytes = max_bytes
        self.memory = memory
        self._data = bytearray()  # UTF-8 lines, each ended by a newline
        self.size = 0
        self._taken = 0  # bytes taken from `memory`, given back by `release`
        self._released = False  # the invocation ended: a guest still running (pinned) logs no more
        self.truncated = False
        self.budget_spent = False  # log calls stopped by the host-call budget (marked once)
        self._partial = {"stdout": b"", "stderr": b""}
        # a store with its stdout on a pipe (runtime/limits.py StdoutPipe): read it before a line is
        # added, so that what the guest printed before a host call's line comes before it
        self.before_line: Callable[[], None] | None = None

    @property
    def lines(self) -> list[str]:
        return self._data.decode("utf-8", "replace").split("\n")[:-1] if self._data else []

    def add(self, line: str) -> None:
        if self.before_line is not None:
            self.before_line()
        if self.truncated or self._released:
            return
        raw = line.encode("utf-8", "replace")
        n = len(raw) + 1 + LINE_OVERHEAD
        if self.size + n > self.max_bytes:
            room = self.max_bytes - self.size - 1 - LINE_OVERHEAD
            kept = raw[:room].decode("utf-8", "ignore").encode("utf-8") if room > 0 else b""
            self._truncate(kept, f"[fnhost] log truncated: over {self.max_bytes} bytes")
            return
        if self.memory is not None:
            if not self.memory.take(n):
                self._truncate(
                    b"",
                    f"[fnhost] log truncated: the host's log memory for running invocations "
                    f"({self.memory.max_bytes} bytes) is in use; later lines were dropped",
                )
                return
            self._taken += n
        self.size += n
        self._data += raw + b"\n"  # a line with newlines in it reads back as several, as from the record

    def _truncate(self, kept: bytes, marker: str) -> None:
        """The last part of a line that fits (within what was counted) and one marker line, then nothing."""
        cost = len(kept) + 1 + LINE_OVERHEAD
        if kept and (self.memory is None or self.memory.take(cost)):
            self._taken += cost if self.memory is not None else 0
            self.size += cost
            self._data += kept + b"\n"
        self.truncated = True
        self._data += marker.encode("utf-8") + b"\n"  # a few dozen bytes, once

    def stream(self, name: str, data: bytes) -> None:
        """Captured stdout/stderr: split into lines, prefixed with the stream name."""
        if self.truncated or self._released:
            return
        room = self.max_bytes - self.size
        buf = self._partial[name] + data[: room + 1]  # what is past the room would be dropped anyway
        *complete, rest = buf.split(b"\n")
        for raw in complete:
            self.add(f"[{name}] {raw.decode('utf-8', 'replace')}")
        if len(rest) > self.max_bytes - self.size:  # an endless line: log what fits now
            self.add(f"[{name}] {rest.decode('utf-8', 'replace')}")
            rest = b""
        self._partial[name] = rest

    def flush(self) -> None:
        for name, rest in self._partial.items():
            if rest:
                self.add(f"[{name}] {rest.decode('utf-8', 'replace')}")
        self._partial = {"stdout": b"", "stderr": b""}

    def release(self) -> None:
        """Give this invocation's bytes back to the host's `LogMemory` (idempotent) and take no more lines;
        the lines kept stay readable."""
        self._released = True
        if self.memory is not None and self._taken:
            self.memory.give(self._taken)
            self._taken = 0


class OutputSink:
    """An output the guest writes to stdout: the next `length` bytes written there, no more (what
    follows goes to the log). Fed from Wasmtime's I/O threads, under the store's `Stdio` lock."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.data = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Keep what the output still lacks of `data`; return the rest."""
        room = self.length - len(self.data)
        self.data += data[:room]
        return data[room:] if room < len(data) else b""

    def complete(self) -> bytes:
        if len(self.data) != self.length:
            raise ValueError(f"wrote {len(self.data)} of the {self.length} output bytes announced to stdout")
        return bytes(self.data)


@dataclass
class CallState:
    """The state host functions see during one invocation."""

    invocation_id: str
    function: str
    version: int
    grants: VersionGrants
    logs: LogBuffer
    calls_left: int
    bytes_left: int
    denied: list[str] = field(default_factory=list)
    pending: bytes = b""  # core ABI: the result of the last host call, read with result_read
    deadline: float = math.inf  # time.monotonic() at which the invocation times out
    wasi_clock_origin_ns: int = 0  # time.monotonic_ns() when the store's WASI context was made
    chain_depth: int = 0  # invocations that led to this one (fnhost.chains); what it causes is at depth + 1
    chain_stopped: list[str] = field(default_factory=list)  # what it caused that the chain limit refused
    resources: dict[str, Any] = field(default_factory=dict)  # per capability kind: what it opened (blob handles)
    on_end: list[Callable[[], None]] = field(default_factory=list)  # run once when the invocation ends

    def end(self) -> None:
        """The invocation is over: release what its host calls left open (unfinished writes are aborted)."""
        callbacks, self.on_end = self.on_end, []
        for callback in callbacks:
            callback()
    outbound: list[Exchange] = field(default_factory=list)  # outbound HTTP requests made (capabilities.http)
    # large bodies (capabilities/body.py): the input left out of the call's record, until the guest
    # takes it, and the store's directory for it; the output the guest set in place of the record's
    input: bytes | None = None
    input_dir: str | None = None
    output: bytes | OutputSink | None = None
    max_output_bytes: int = 0

    def charge(self, nbytes: int) -> None:
        """Count one host call moving `nbytes`; over budget is `limit-exceeded`."""
        if self.calls_left <= 0:
            raise HostCallError(
                ErrorKind.LIMIT_EXCEEDED,
                "host-call budget of this invocation is spent (limits.max_host_calls)",
            )
        if nbytes > self.bytes_left:
            raise HostCallError(
                ErrorKind.LIMIT_EXCEEDED,
                "host-call byte budget of this invocation is spent (limits.max_host_bytes)",
            )
        self.calls_left -= 1
        self.bytes_left -= nbytes

    def stop_chain(self, error: ChainTooDeep) -> HostCallError:
        """A message or blob event this invocation caused was refused by the chain limit: `limit-exceeded`."""
        self.chain_stopped.append(str(error))
        return HostCallError(ErrorKind.LIMIT_EXCEEDED, str(error))

    def deny(self, what: str) -> HostCallError:
        message = f"{what} is not granted to function '{self.function}'; add it to [grants] in fnhost.toml"
        self.denied.append(message)
        return HostCallError(ErrorKind.DENIED, message)


_current = threading.local()


def current_state() -> CallState:
    state: CallState | None = getattr(_current, "state", None)
    if state is None:  # a host function called outside an invocation: a host bug, not a guest's
        raise RuntimeError("fnhost host function called outside an invocation")
    return state


def set_current_state(state: CallState | None) -> None:
    _current.state = state


class GuestMemory:
    """Bounds-checked access to a core instance's exported `memory` from a host function."""

    def __init__(self, caller: wasmtime.Caller) -> None:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise HostCallError(ErrorKind.INVALID, "module exports no memory")
        self.caller = caller
        self.base = ctypes.addressof(memory.data_ptr(caller).contents)
        self.size = memory.data_len(caller)

    def read(self, ptr: int, length: int) -> bytes:
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if ptr + length > self.size:
            raise HostCallError(ErrorKind.INVALID, f"buffer {ptr}+{length} is outside guest memory")
        return ctypes.string_at(self.base + ptr, length)

    def read_str(self, ptr: int, length: int) -> str:
        try:
            return self.read(ptr, length).decode("utf-8")
        except UnicodeDecodeError:
            raise HostCallError(ErrorKind.INVALID, "string argument is not UTF-8") from None

    def write(self, ptr: int, data: bytes) -> None:
        ptr &= 0xFFFFFFFF
        if ptr + len(data) > self.size:
            raise HostCallError(ErrorKind.INVALID, f"buffer {ptr}+{len(data)} is outside guest memory")
        ctypes.memmove(self.base + ptr, data, len(data))
