"""One declaration per host operation, from which both guest bindings are derived (after Extism's
`host_fn`): the component binding (the WIT function, `result<T, error>`) and the core-ABI binding
(docs/abi.md: pointers and lengths in, an `i64` status out, the value as the pending result).

A capability declares an operation as an annotated method::

    @operation(since="0.2.0")
    def increment(self, state: CallState, bucket: str, key: str, delta: S64) -> S64: ...

The WIT name is the method name in kebab case (`compare-and-swap`), the core import
`<interface>_<name>` (`kv_compare_and_swap`). The parameters after `state` give the core-ABI
parameter types, the return annotation the encoding of the result; both are looked up in `PARAMS`
and `RESULTS`, the one table of how each WIT type crosses the core ABI. `since` is the contract
version (`fnhost:function@X`) that first has the operation; it stays in every later version.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import wasmtime
from wasmtime.component import Variant

from ..stores.errors import StoreError
from .errors import ErrorKind, HostCallError
from .state import CallState, GuestMemory, current_state

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()

U16 = Annotated[int, "u16"]
U32 = Annotated[int, "u32"]
S64 = Annotated[int, "s64"]
U64 = Annotated[int, "u64"]
Lossy = Annotated[str, "lossy"]
"""A string read as far as the invocation's log can keep it, invalid UTF-8 replaced (log lines)."""
Level = Literal["debug", "info", "warn", "error"]
"""The WIT `log.level` enum; the core ABI passes its index."""
ByteText = Literal["base64", "latin1"]
"""The WIT `body.byte-text` enum; the core ABI passes its index."""


def bytes_as_text(data: bytes, encoding: ByteText) -> str:
    """`data` written as `encoding` (a string crosses into a component in bulk; a list<u8> does not)."""
    return data.decode("latin-1") if encoding == "latin1" else base64.b64encode(data).decode("ascii")


def text_size(text: str, encoding: ByteText) -> int:
    """How many bytes `text` holds at most, before it is decoded (refuse an oversized one early)."""
    return len(text) if encoding == "latin1" else len(text) // 4 * 3


def bytes_of_text(text: str, encoding: ByteText, what: str) -> bytes:
    """The bytes `text` holds in `encoding`; `invalid` naming `what` when it is not in it."""
    try:
        return text.encode("latin-1") if encoding == "latin1" else base64.b64decode(text, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        why = "has a character above U+00FF" if encoding == "latin1" else "is not padded base64 (RFC 4648)"
        raise HostCallError(ErrorKind.INVALID, f"{what} {why}") from None

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


def decode_strings(data: bytes) -> list[str]:
    """A core-ABI `list<string>`."""
    return [_utf8(raw) for raw in _byte_strings(data, 1)]


def decode_entries(data: bytes) -> list[tuple[str, bytes]]:
    """A core-ABI `list<tuple<string, bytes>>`: count, then key and value of each entry."""
    items = _byte_strings(data, 2)
    return [(_utf8(items[i]), items[i + 1]) for i in range(0, len(items), 2)]


def decode_pairs(data: bytes) -> list[tuple[str, str]]:
    """A core-ABI `list<tuple<string, string>>` (headers): encoded as `decode_entries`."""
    return [(k, _utf8(v)) for k, v in decode_entries(data)]


def _byte_strings(data: bytes, per_item: int) -> list[bytes]:
    if len(data) < 4:
        raise HostCallError(ErrorKind.INVALID, "list is shorter than its 4-byte count")
    (count,) = struct.unpack_from("<I", data, 0)
    pos, out = 4, []
    for _ in range(count * per_item):
        if pos + 4 > len(data):
            raise HostCallError(ErrorKind.INVALID, "list ends inside an item's length")
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + n > len(data):
            raise HostCallError(ErrorKind.INVALID, "list ends inside an item")
        out.append(data[pos : pos + n])
        pos += n
    if pos != len(data):
        raise HostCallError(ErrorKind.INVALID, f"list has {len(data) - pos} bytes after its last item")
    return out


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HostCallError(ErrorKind.INVALID, "string argument is not UTF-8") from None


def encode_strings(items: Sequence[str]) -> bytes:
    """`list<string>` in the core ABI encoding."""
    out = [struct.pack("<I", len(items))]
    for item in items:
        raw = item.encode()
        out.append(struct.pack("<I", len(raw)))
        out.append(raw)
    return b"".join(out)


def encode_pairs(items: Sequence[tuple[str, str]]) -> bytes:
    """`list<tuple<string, string>>` in the core ABI encoding: count, then each string length-prefixed."""
    out = [struct.pack("<I", len(items))]
    for pair in items:
        for item in pair:
            raw = item.encode()
            out.append(struct.pack("<I", len(raw)))
            out.append(raw)
    return b"".join(out)


_FIELDS: dict[Any, Callable[[Any], bytes]] = {
    U16: lambda v: struct.pack("<H", v),
    U32: lambda v: struct.pack("<I", v),
    S64: lambda v: struct.pack("<q", v),
    str: lambda v: struct.pack("<I", len(v.encode())) + v.encode(),
    bytes: lambda v: struct.pack("<I", len(v)) + bytes(v),
    list[tuple[str, str]]: encode_pairs,
    ByteText: lambda v: struct.pack("<B", typing.get_args(ByteText).index(v)),
}
"""How each field of a record result is written into its core-ABI buffer (docs/abi.md, records)."""


def record_encoder(cls: type) -> Encode | None:
    """A dataclass result (a WIT record) crosses the core ABI as its fields in order, each in its
    `_FIELDS` encoding; the call returns the buffer's length. None if a field has no encoding."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    if not all(hints[n] in _FIELDS for n in names):
        return None
    writers = [(n, _FIELDS[hints[n]]) for n in names]

    def encode(value: Any) -> tuple[bytes, int]:
        data = b"".join(write(getattr(value, n)) for n, write in writers)
        return data, len(data)

    return encode


def encode_options(items: Sequence[bytes | None]) -> bytes:
    """`list<option<bytes>>` in the core ABI encoding: count, then per item `0`, or `1` and the bytes."""
    out = [struct.pack("<I", len(items))]
    for item in items:
        out.append(b"\x00" if item is None else b"\x01" + struct.pack("<I", len(item)) + item)
    return b"".join(out)


def _lossy(state: CallState, memory: GuestMemory, ptr: int, length: int) -> str:
    length = min(length & MASK32, state.logs.max_bytes)  # never copy more than the log can keep
    try:
        return memory.read(ptr, length).decode("utf-8", "replace")
    except HostCallError as e:
        return f"(unreadable log message: {e.message})"


def _level(index: int) -> str:
    levels = typing.get_args(Level)
    return str(levels[index]) if 0 <= index < len(levels) else "info"


def _case(enum: Any, index: int) -> str:
    cases = typing.get_args(enum)
    if not 0 <= index < len(cases):
        raise HostCallError(ErrorKind.INVALID, f"enum value {index} is not one of {', '.join(cases)}")
    return str(cases[index])


Decode = Callable[[CallState, GuestMemory, Sequence[int]], Any]
PARAMS: dict[Any, tuple[list[wasmtime.ValType], Decode]] = {
    str: ([I32, I32], lambda s, m, a: m.read_str(a[0], a[1])),
    bytes: ([I32, I32], lambda s, m, a: m.read(a[0], a[1])),
    bytes | None: ([I32, I32, I32], lambda s, m, a: m.read(a[1], a[2]) if a[0] else None),
    U32: ([I32], lambda s, m, a: a[0] & MASK32),
    U32 | None: ([I32, I32], lambda s, m, a: a[1] & MASK32 if a[0] else None),
    S64: ([I64], lambda s, m, a: a[0]),
    U64: ([I64], lambda s, m, a: a[0] & MASK64),
    list[str]: ([I32, I32], lambda s, m, a: decode_strings(m.read(a[0], a[1]))),
    list[tuple[str, bytes]]: ([I32, I32], lambda s, m, a: decode_entries(m.read(a[0], a[1]))),
    list[tuple[str, str]]: ([I32, I32], lambda s, m, a: decode_pairs(m.read(a[0], a[1]))),
    Lossy: ([I32, I32], lambda s, m, a: _lossy(s, m, a[0], a[1])),
    Level: ([I32], lambda s, m, a: _level(a[0])),
    ByteText: ([I32], lambda s, m, a: _case(ByteText, a[0])),
}
"""How each parameter type arrives through the core ABI: its wasm parameters and their decoding."""

Encode = Callable[[Any], tuple[bytes, int]]
RESULTS: dict[Any, Encode] = {
    None: lambda v: (b"", 0),
    bytes: lambda v: (bytes(v), len(v)),
    str: lambda v: (v.encode(), len(v.encode())),
    bool: lambda v: (b"", int(v)),
    S64: lambda v: (struct.pack("<q", v), 8),
    list[str]: lambda v: (encode_strings(v), len(encode_strings(v))),
    list[bytes | None]: lambda v: (encode_options(v), len(encode_options(v))),
    U32: lambda v: (b"", v),
}
"""How each result type leaves through the core ABI: (pending result, the call's return value).
A record type is not listed: it brings its own `core_encode()` (the pending result) and
`as_record()` (its component value), e.g. `blobs.ObjectInfo`."""


def _encode_record(value: Any) -> tuple[bytes, int]:
    data: bytes = value.core_encode()
    return data, len(data)


def _is_record_type(result: Any) -> bool:
    return isinstance(result, type) and hasattr(result, "core_encode") and hasattr(result, "as_record")


def result_encoder(result: Any) -> Encode | None:
    """The core-ABI encoding of a result type: `RESULTS`, a record's own (`core_encode`), or a
    dataclass record's (`record_encoder`)."""
    if _is_record_type(result):
        return _encode_record
    if result in RESULTS:
        return RESULTS[result]
    if isinstance(result, type) and dataclasses.is_dataclass(result):
        return record_encoder(result)
    return None


@dataclass(frozen=True)
class Operation:
    """One host function of a capability, as declared."""

    name: str  # the WIT name, kebab case
    since: tuple[int, ...]  # the first contract version that has it
    method: Callable[..., Any]  # (capability, state, *args)
    params: tuple[Any, ...]  # annotations of the arguments after `state`
    result: Any  # the return annotation (None: no value)
    fallible: bool  # result<T, error> in WIT; False: no error to return (log.write)

    def core_name(self, interface: str) -> str:
        return f"{interface.replace('-', '_')}_{self.name.replace('-', '_')}"

    def core_type(self) -> wasmtime.FuncType:
        params = [t for p in self.params for t in PARAMS[p][0]]
        return wasmtime.FuncType(params, [I64] if self.fallible else [])

    def component_func(self, capability: object) -> Callable[..., Any]:
        """The component host function: `result<T, error>` from the method's value or its error.

        An unexpected host exception becomes `unavailable` (logged), so a host bug never shows up
        as a guest trap.
        """
        method = self.method
        if not self.fallible:
            return lambda _store, *args: method(capability, current_state(), *args)
        record = _is_record_type(self.result)

        def func(_store: Any, *args: Any) -> Any:
            state = current_state()
            try:
                value = method(capability, state, *args)
                return value.as_record() if record else value
            except HostCallError as e:
                return _variant(e)
            except StoreError as e:
                return _variant(HostCallError.from_store(e))
            except Exception as e:  # host bug or store crash: the guest sees `unavailable`
                state.logs.add(f"[fnhost] host call failed: {type(e).__name__}")
                return _variant(HostCallError(ErrorKind.UNAVAILABLE, "host call failed"))

        return func

    def core_func(self, capability: object) -> Callable[..., Any]:
        """The core-ABI host function: `>= 0` with the value as the pending result, or `-code` with
        the error message as the pending result (docs/abi.md, Host imports)."""
        method, encoder = self.method, result_encoder(self.result)
        assert encoder is not None  # checked by operations_of
        encode = encoder
        decoders: list[tuple[int, int, Decode]] = []
        at = 0
        for p in self.params:
            types, decode = PARAMS[p]
            decoders.append((at, at + len(types), decode))
            at += len(types)

        def call(caller: wasmtime.Caller, args: tuple[int, ...], state: CallState) -> Any:
            memory = GuestMemory(caller)
            values = [decode(state, memory, args[lo:hi]) for lo, hi, decode in decoders]
            return method(capability, state, *values)

        if not self.fallible:

            def infallible(caller: wasmtime.Caller, *args: int) -> None:
                state = current_state()
                try:
                    call(caller, args, state)
                except HostCallError as e:  # nothing to return it to: the invocation's log says it
                    state.logs.add(f"[fnhost] {self.name}: {e.message}")

            return infallible

        def fallible(caller: wasmtime.Caller, *args: int) -> int:
            state = current_state()
            try:
                state.pending, status = encode(call(caller, args, state))
                return status
            except HostCallError as e:
                error = e
            except StoreError as e:
                error = HostCallError.from_store(e)
            except Exception as e:
                state.logs.add(f"[fnhost] host call failed: {type(e).__name__}")
                error = HostCallError(ErrorKind.UNAVAILABLE, "host call failed")
            state.pending = error.message.encode()
            return -error.kind.code

        return fallible


def _variant(e: HostCallError) -> Variant:
    if e.kind is ErrorKind.NOT_FOUND:
        return Variant(e.kind.case)
    return Variant(e.kind.case, e.message)


def parse_version(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def operation(*, since: str = "0.1.0", fallible: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a capability method as a host operation of contract version `since` onwards."""

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__fnhost_operation__ = (parse_version(since), fallible)  # type: ignore[attr-defined]
        return method

    return mark


_declared: dict[type, tuple[Operation, ...]] = {}


def operations_of(cls: type) -> tuple[Operation, ...]:
    """The operations `cls` declares, in declaration order, with their annotations resolved and
    checked against the codec tables (a type the core ABI cannot carry fails when it is linked)."""
    if cls in _declared:
        return _declared[cls]
    found: dict[str, Operation] = {}
    for klass in reversed(cls.__mro__):
        for attr, method in vars(klass).items():
            mark = getattr(method, "__fnhost_operation__", None)
            if mark is None:
                continue
            hints = typing.get_type_hints(method, include_extras=True)
            names = list(method.__code__.co_varnames[: method.__code__.co_argcount])
            if names[:2] != ["self", "state"]:
                raise TypeError(f"{cls.__name__}.{attr}: an operation takes (self, state: CallState, ...)")
            params = tuple(hints[n] for n in names[2:])
            result = hints.get("return")
            result = None if result is type(None) else result
            for p in params:
                if p not in PARAMS:
                    raise TypeError(f"{cls.__name__}.{attr}: no core-ABI encoding for parameter type {p!r}")
            if result_encoder(result) is None:
                raise TypeError(f"{cls.__name__}.{attr}: no core-ABI encoding for result type {result!r}")
            since, fallible = mark
            found[attr] = Operation(attr.replace("_", "-"), since, method, params, result, fallible)
    return _declared.setdefault(cls, tuple(found.values()))
