"""What every capability shares: the per-invocation call state, host-call errors, and the adapters
that expose one Python implementation both to components (WIT) and to core modules (docs/abi.md).

A capability module has the same four steps (after Spin's factors):

1. ``link_component(root)`` / ``link_core(linker)`` — add its host functions once per engine;
2. ``check_grants(manifest)`` — at deploy, reject grants it cannot honour;
3. ``grants_for(manifest)`` — the allowed set of one function version, computed once per version;
4. at call time its functions read the running invocation's `CallState` and deny anything outside it.
"""

from __future__ import annotations

import ctypes
import functools
import math
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import wasmtime
from wasmtime.component import LinkerInstance, Variant

from ..manifest import Manifest
from ..namespaces import DEFAULT, KV, QUEUE, SECRET, is_foreign, namespace_of, resolve
from ..stores.errors import InvalidArgument, StoreError, StoreUnavailable, TooLarge


class ErrorKind(Enum):
    """The WIT `types.error` cases, with their core-ABI codes."""

    DENIED = ("denied", 1)
    NOT_FOUND = ("not-found", 2)
    TOO_LARGE = ("too-large", 3)
    LIMIT_EXCEEDED = ("limit-exceeded", 4)
    UNAVAILABLE = ("unavailable", 5)
    INVALID = ("invalid", 6)

    def __init__(self, case: str, code: int) -> None:
        self.case = case
        self.code = code


class HostCallError(Exception):
    """An expected failure of a host call, returned to the guest as a WIT error (never a trap)."""

    def __init__(self, kind: ErrorKind, message: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @classmethod
    def from_store(cls, error: StoreError) -> HostCallError:
        if isinstance(error, TooLarge):
            return cls(ErrorKind.TOO_LARGE, str(error))
        if isinstance(error, InvalidArgument):
            return cls(ErrorKind.INVALID, str(error))
        if isinstance(error, StoreUnavailable):
            return cls(ErrorKind.UNAVAILABLE, str(error))
        return cls(ErrorKind.UNAVAILABLE, f"store error: {type(error).__name__}")


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


@dataclass(frozen=True)
class VersionGrants:
    """The allowed sets of one function version (step 3), shared by all its invocations: each maps
    a name as the guest asks for it (the manifest's) to the store name it reaches (fnhost.namespaces)."""

    kv: Mapping[str, str]
    queues: Mapping[str, str]
    secrets: Mapping[str, str]
    namespace: str = DEFAULT

    @classmethod
    def of(cls, manifest: Manifest, function: str) -> VersionGrants:
        """The grants of `manifest`, resolved in the namespace of `function` (a store name)."""
        g, namespace = manifest.grants, namespace_of(function)

        def resolved(refs: tuple[str, ...]) -> dict[str, str]:
            return {ref: resolve(namespace, ref) for ref in refs}

        return cls(resolved(g.kv), resolved(g.queues), resolved(g.secrets), namespace)

    @functools.cached_property
    def foreign(self) -> bool:
        """Whether any grant names another namespace's resource (then `shared_only` applies per call)."""
        return any(is_foreign(self.namespace, s) for m in (self.kv, self.queues, self.secrets) for s in m.values())

    def shared_only(self, shared: Callable[[str, str, str], bool]) -> VersionGrants:
        """These grants without the other namespaces' resources that are not shared (any more):
        `shared(kind, store name, namespace)` says which are."""

        def keep(kind: str, grants: Mapping[str, str]) -> dict[str, str]:
            ns = self.namespace
            return {ref: s for ref, s in grants.items() if not is_foreign(ns, s) or shared(kind, s, ns)}

        return VersionGrants(keep(KV, self.kv), keep(QUEUE, self.queues), keep(SECRET, self.secrets), self.namespace)


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


class Capability(Protocol):
    name: str

    def check_grants(self, manifest: Manifest) -> None: ...
    def link_component(self, root: LinkerInstance) -> None: ...
    def link_core(self, linker: wasmtime.Linker) -> None: ...


# --- adapters -----------------------------------------------------------------------------------

Impl = Callable[..., Any]


def component_func(impl: Impl) -> Callable[..., Any]:
    """Wrap `impl(state, *args)` as a component host function returning `result<T, error>`.

    Expected failures become the error variant; an unexpected host exception becomes
    `unavailable` (logged), so a host bug never shows up as a guest trap.
    """

    def func(_store: Any, *args: Any) -> Any:
        state = current_state()
        try:
            return impl(state, *args)
        except HostCallError as e:
            return _variant(e)
        except StoreError as e:
            return _variant(HostCallError.from_store(e))
        except Exception as e:  # host bug or store crash: the guest sees `unavailable`
            state.logs.add(f"[fnhost] host call failed: {type(e).__name__}")
            return _variant(HostCallError(ErrorKind.UNAVAILABLE, "host call failed"))

    return func


def _variant(e: HostCallError) -> Variant:
    if e.kind is ErrorKind.NOT_FOUND:
        return Variant(e.kind.case)
    return Variant(e.kind.case, e.message)


I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()


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


def define_core(
    linker: wasmtime.Linker, name: str, params: list[wasmtime.ValType], impl: Callable[..., bytes | None]
) -> None:
    """Define `fnhost.<name>(params) -> i64` per the core ABI.

    `impl(state, memory, *raw_args)` returns the result bytes (kept as the pending result; the call
    returns their length) or None (returns 0). A `HostCallError` returns `-code` with the message
    as the pending result.
    """

    def func(caller: wasmtime.Caller, *args: int) -> int:
        state = current_state()
        try:
            result = impl(state, GuestMemory(caller), *args)
        except HostCallError as e:
            state.pending = e.message.encode()
            return -e.kind.code
        except StoreError as e:
            err = HostCallError.from_store(e)
            state.pending = err.message.encode()
            return -err.kind.code
        except Exception as e:
            state.logs.add(f"[fnhost] host call failed: {type(e).__name__}")
            state.pending = b"host call failed"
            return -ErrorKind.UNAVAILABLE.code
        state.pending = result or b""
        return len(state.pending)

    linker.define_func("fnhost", name, wasmtime.FuncType(params, [I64]), func, access_caller=True)


def encode_strings(items: list[str]) -> bytes:
    """`list<string>` in the core ABI encoding."""
    out = [struct.pack("<I", len(items))]
    for item in items:
        raw = item.encode()
        out.append(struct.pack("<I", len(raw)))
        out.append(raw)
    return b"".join(out)
