"""Encoding of handler inputs and outputs for core modules, byte for byte as docs/abi.md says."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import NamedTuple

from .outcomes import HttpResponse

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_DEADLINE_MEMORY = struct.Struct("<QI")

EVENT_INVOKE = 0
EVENT_QUEUE_BATCH = 1
EVENT_SCHEDULE = 2
EVENT_BLOB = 3
_INVOKE_TAG = bytes([EVENT_INVOKE])
_NO_IDS = _U32.pack(0)


@dataclass(frozen=True)
class BatchMessage:
    """One message of a queue batch, as the event handler sees it (WIT `queue-message`)."""

    id: str
    queue: str
    body: bytes
    receive_count: int


@dataclass(frozen=True)
class QueueBatch:
    """The `queue-batch` event: messages delivered together by a queue trigger."""

    messages: tuple[BatchMessage, ...]


@dataclass(frozen=True)
class ScheduleTick:
    """The `schedule` event: one tick of a schedule (WIT `schedule-tick`)."""

    schedule: str
    scheduled_unix_ms: int


@dataclass(frozen=True)
class BlobEvent:
    """The `blob` event: one object change delivered by a blob trigger (WIT `blob-event`)."""

    bucket: str
    key: str
    event: str  # "put" | "delete"
    size: int
    sha256: str
    receive_count: int


Event = bytes | QueueBatch | ScheduleTick | BlobEvent
"""What the event handler is called with: an invoke payload, a queue batch or a schedule tick."""


class Context(NamedTuple):
    """What a handler is told about its invocation (a tuple: one is made per invocation)."""

    invocation_id: str
    function_name: str
    function_version: str
    deadline_unix_ms: int
    memory_limit_mb: int


class AbiError(Exception):
    """The guest's output does not follow the ABI."""


def _bytes(out: list[bytes], data: bytes) -> None:
    out.append(_U32.pack(len(data)))
    out.append(data)


def _headers(out: list[bytes], headers: list[tuple[str, str]]) -> None:
    out.append(_U32.pack(len(headers)))
    for name, value in headers:
        _bytes(out, name.encode())
        _bytes(out, value.encode())


def _context(out: list[bytes], ctx: Context) -> None:
    invocation_id = ctx.invocation_id.encode()
    out += (
        _U32.pack(len(invocation_id)),
        invocation_id,
        _name_and_version(ctx.function_name, ctx.function_version),
        _DEADLINE_MEMORY.pack(ctx.deadline_unix_ms, ctx.memory_limit_mb),
    )


@functools.lru_cache(maxsize=1024)
def _name_and_version(name: str, version: str) -> bytes:
    """The same for every invocation of a version: encoded once."""
    out: list[bytes] = []
    _bytes(out, name.encode())
    _bytes(out, version.encode())
    return b"".join(out)


def encode_http_input(
    ctx: Context, method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    out: list[bytes] = []
    _context(out, ctx)
    _bytes(out, method.encode())
    _bytes(out, path.encode())
    _headers(out, headers)
    _bytes(out, body)
    return b"".join(out)


def encode_invoke_input(ctx: Context, payload: bytes) -> bytes:
    return encode_event_input(ctx, payload)


def encode_event_input(ctx: Context, event: Event) -> bytes:
    out: list[bytes] = []
    _context(out, ctx)
    if isinstance(event, bytes | bytearray | memoryview):  # a direct invoke, the most frequent event
        out += (_INVOKE_TAG, _U32.pack(len(event)), event)
    elif isinstance(event, QueueBatch):
        out.append(bytes([EVENT_QUEUE_BATCH]))
        out.append(_U32.pack(len(event.messages)))
        for m in event.messages:
            _bytes(out, m.id.encode())
            _bytes(out, m.queue.encode())
            _bytes(out, m.body)
            out.append(_U32.pack(m.receive_count))
    elif isinstance(event, ScheduleTick):
        out.append(bytes([EVENT_SCHEDULE]))
        _bytes(out, event.schedule.encode())
        out.append(_U64.pack(event.scheduled_unix_ms))
    elif isinstance(event, BlobEvent):
        out.append(bytes([EVENT_BLOB]))
        for text in (event.bucket, event.key, event.event):
            _bytes(out, text.encode())
        out.append(_U64.pack(event.size))
        _bytes(out, event.sha256.encode())
        out.append(_U32.pack(event.receive_count))
    else:
        raise TypeError(f"not an event: {type(event).__name__}")
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise AbiError(f"output ends at byte {len(self.data)}, expected {n} more at {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def bytes(self) -> bytes:
        return self.take(self.u32()).tobytes()

    def text(self) -> str:
        try:
            return self.bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise AbiError(f"string in output is not UTF-8: {e}") from None

    def headers(self) -> list[tuple[str, str]]:
        return [(self.text(), self.text()) for _ in range(self.u32())]


def split_status(output: bytes) -> tuple[bool, bytes]:
    """(ok, rest): the tag byte, then either the success value or the UTF-8 error message."""
    if not output:
        raise AbiError("handler returned an empty output (expected a tag byte)")
    if output[0] not in (0, 1):
        raise AbiError(f"output tag byte is {output[0]}, expected 0 (ok) or 1 (error)")
    return output[0] == 0, output[1:]


def decode_http_response(data: bytes) -> HttpResponse:
    r = _Reader(data)
    status = r.u16()
    headers = r.headers()
    body = r.bytes()
    return HttpResponse(status, headers, body)


def decode_event_result(data: bytes) -> tuple[bytes, list[str]]:
    if len(data) >= 8:  # an output and no failed message ids, as most results are: two lengths to check
        n = _U32.unpack_from(data)[0]
        if len(data) == n + 8 and data[n + 4 :] == _NO_IDS:
            return data[4 : n + 4], []
    r = _Reader(data)
    output = r.bytes()
    failed = [r.text() for _ in range(r.u32())]
    return output, failed
