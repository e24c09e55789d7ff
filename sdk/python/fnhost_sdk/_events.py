"""What starts the event handler (`Invoke`, `QueueBatch`, `Schedule`, `BlobChange`) and what it returns."""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any

Output = bytes | bytearray | memoryview | str | dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class Invoke:
    """A direct invoke: the caller's payload, as sent."""

    payload: bytes

    def text(self, encoding: str = "utf-8") -> str:
        return self.payload.decode(encoding)

    def json(self) -> Any:
        return _json.loads(self.payload.decode())  # JSON is UTF-8 (RFC 8259)


@dataclass(frozen=True)
class QueueMessage:
    id: str
    queue: str
    body: bytes
    receive_count: int  # deliveries of this message, this one included

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        return _json.loads(self.body.decode())  # JSON is UTF-8 (RFC 8259)


@dataclass(frozen=True)
class QueueBatch:
    """Messages delivered by a queue trigger. Return `EventResult(failed_message_ids=[...])` to have
    some of them redelivered."""

    messages: list[QueueMessage]


@dataclass(frozen=True)
class Schedule:
    """One tick of a schedule."""

    schedule: str
    scheduled_unix_ms: int


@dataclass(frozen=True)
class BlobChange:
    """An object change delivered by a blob trigger (`[[triggers.blob]]`): `event` is "put" or
    "delete"; size and sha256 are the object's (for "delete", the deleted object's). Delivered at
    least once: a handler that fails or times out gets it again (`receive_count` counts)."""

    bucket: str
    key: str
    event: str
    size: int
    sha256: str
    receive_count: int


Event = Invoke | QueueBatch | Schedule | BlobChange


@dataclass
class EventResult:
    """The event handler's result. A handler may instead return the output alone."""

    output: Output = b""
    failed_message_ids: list[str] = field(default_factory=list)


def encode_output(value: Output) -> bytes:
    """Output as bytes: bytes as is, str as UTF-8, dict/list as JSON, None as empty."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (dict, list)):
        return _json.dumps(value, separators=(",", ":")).encode()
    raise TypeError(
        f"an event handler must return bytes, str, dict, list, None or EventResult, not {type(value).__name__}"
    )


def encode_result(value: EventResult | Output) -> tuple[bytes, list[str]]:
    """What an event handler returned, as the WIT event-result's (output, failed-message-ids)."""
    if isinstance(value, EventResult):
        return encode_output(value.output), list(value.failed_message_ids)
    return encode_output(value), []
