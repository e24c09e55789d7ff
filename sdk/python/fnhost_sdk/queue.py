"""Durable queues granted in the manifest (`[grants] queues = [...]`)."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import queue as _queue

from ._errors import host_error


def publish(queue: str, body: bytes | str) -> str:
    """Append a message (str as UTF-8) to `queue`; returns the message id."""
    try:
        return _queue.publish(queue, body.encode() if isinstance(body, str) else bytes(body))
    except Err as e:
        raise host_error(e) from None
