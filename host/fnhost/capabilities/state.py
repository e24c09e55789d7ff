"""What host functions see during one invocation: its call state (grants, budget, logs, the core
ABI's pending result) and, for core modules, bounds-checked access to the guest's memory."""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import wasmtime

from .errors import ErrorKind, HostCallError

if TYPE_CHECKING:
    from ..egress import Exchange
    from .base import VersionGrants


class LogBuffer:
    """Log lines of one invocation, bounded in bytes; what does not fit is dropped with one marker."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.lines: list[str] = []
        self.size = 0
        self.truncated = False
        self.budget_spent = False  # log calls stopped by the host-call budget (marked once)
        self._partial = {"stdout": b"", "stderr": b""}

    def add(self, line: str) -> None:
        if self.truncated:
            return
        raw = line.encode("utf-8", "replace")
        if self.size + len(raw) + 1 > self.max_bytes:
            room = self.max_bytes - self.size - 1
            if room > 0:  # keep what fits of the line that overflows
                self.lines.append(raw[:room].decode("utf-8", "ignore"))
            self.truncated = True
            self.lines.append(f"[fnhost] log truncated: over {self.max_bytes} bytes")
            return
        n = len(raw) + 1
        self.size += n
        self.lines.append(line)

    def stream(self, name: str, data: bytes) -> None:
        """Captured stdout/stderr: split into lines, prefixed with the stream name."""
        if self.truncated:
            return
        buf = self._partial[name] + data
        *complete, rest = buf.split(b"\n")
        for raw in complete:
            self.add(f"[{name}] {raw.decode('utf-8', 'replace')}")
        if len(rest) > self.max_bytes:  # an endless line: log what fits now
            self.add(f"[{name}] {rest.decode('utf-8', 'replace')}")
            rest = b""
        self._partial[name] = rest

    def flush(self) -> None:
        for name, rest in self._partial.items():
            if rest:
                self.add(f"[{name}] {rest.decode('utf-8', 'replace')}")
        self._partial = {"stdout": b"", "stderr": b""}


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
