"""Key-value buckets granted in the manifest (`[grants] kv = [...]`)."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import kv as _kv

from ._errors import NotFound, host_error


def get(bucket: str, key: str) -> bytes | None:
    """The value of `key`, or None if it is not set."""
    try:
        return _kv.get(bucket, key)
    except Err as e:
        error = host_error(e)
    if isinstance(error, NotFound):  # the WIT reports a missing key as error.not-found
        return None
    raise error


def set(bucket: str, key: str, value: bytes | str) -> None:
    """Store `value` (str as UTF-8) under `key`."""
    try:
        _kv.set(bucket, key, value.encode() if isinstance(value, str) else bytes(value))
    except Err as e:
        raise host_error(e) from None


def delete(bucket: str, key: str) -> None:
    """Remove `key`; deleting a missing key succeeds."""
    try:
        _kv.delete(bucket, key)
    except Err as e:
        raise host_error(e) from None


def list_keys(bucket: str, prefix: str = "", limit: int = 1000) -> list[str]:
    """Keys starting with `prefix`, in byte order, at most `limit` of them."""
    try:
        return _kv.list_keys(bucket, prefix, limit)
    except Err as e:
        raise host_error(e) from None
