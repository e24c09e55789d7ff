"""Key-value buckets granted in the manifest (`[grants] kv = [...]`)."""

from __future__ import annotations

import math

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


def set(bucket: str, key: str, value: bytes | str, ttl_s: float | None = None) -> None:
    """Store `value` (str as UTF-8) under `key`; with `ttl_s`, the key disappears that many seconds
    later (a later `set` without it makes the key permanent again)."""
    data = _bytes(value)
    try:
        if ttl_s is None:
            _kv.set(bucket, key, data)
        else:
            _kv.set_with_ttl(bucket, key, data, max(1, math.ceil(ttl_s * 1000)))
    except Err as e:
        raise host_error(e) from None


def increment(bucket: str, key: str, delta: int = 1) -> int:
    """Add `delta` to the integer under `key` (a missing key counts as 0) and return the new value,
    atomically: two invocations incrementing at once never lose an update. The value is stored as
    decimal text, so `get` returns e.g. b"42"."""
    try:
        return _kv.increment(bucket, key, delta)
    except Err as e:
        raise host_error(e) from None


def compare_and_swap(bucket: str, key: str, expected: bytes | None, new: bytes | str) -> bool:
    """Set `key` to `new` only if its value is `expected` now (None: only if the key is absent);
    True if it did. Atomic: of several invocations racing with the same `expected`, one wins."""
    try:
        return _kv.compare_and_swap(bucket, key, None if expected is None else bytes(expected), _bytes(new))
    except Err as e:
        raise host_error(e) from None


def get_many(bucket: str, keys: list[str]) -> list[bytes | None]:
    """The values of up to 1,000 keys, in the order asked (None where not set)."""
    try:
        return list(_kv.get_many(bucket, list(keys)))
    except Err as e:
        raise host_error(e) from None


def set_many(bucket: str, entries: dict[str, bytes | str] | list[tuple[str, bytes | str]]) -> None:
    """Store up to 1,000 entries in one transaction: all of them or, on an error, none."""
    items = entries.items() if isinstance(entries, dict) else entries
    try:
        _kv.set_many(bucket, [(k, _bytes(v)) for k, v in items])
    except Err as e:
        raise host_error(e) from None


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


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
