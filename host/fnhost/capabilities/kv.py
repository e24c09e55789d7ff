"""Key-value storage in buckets. A bucket is reachable only when the manifest grants it; two
functions of one namespace granted the same bucket share it (explicit sharing); across namespaces
only a share record lets them (fnhost.control.shares). Any granted bucket exists on first use.

Keys set with a TTL are invisible once expired (the store checks at every read); a background
thread deletes them every `purge_interval_s`."""

from __future__ import annotations

import threading

from ..stores.errors import StoreError
from ..stores.kv import KVStore
from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import S64, U32, U64, operation
from .state import CallState

KV = "kv"
MAX_LIST_LIMIT = 1000


class KvCapability(Capability):
    interface = "kv"
    grant_key = "kv"
    kind = KV
    noun = "kv bucket"

    def __init__(self, store: KVStore, purge_interval_s: float = 30.0) -> None:
        self.store = store
        self._stop = threading.Event()
        self._purger = threading.Thread(
            target=self._purge, args=(purge_interval_s,), name="fnhost-kv-expiry", daemon=True
        )
        self._purger.start()

    def _purge(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                while self.store.purge_expired(1000) == 1000 and not self._stop.is_set():
                    pass
            except StoreError:  # the database is busy or away: the next round purges
                continue

    def close(self) -> None:
        self._stop.set()
        self._purger.join(timeout=10)

    @operation()
    def get(self, state: CallState, bucket: str, key: str) -> bytes:
        stored = self.store_name(state, bucket)
        state.charge(len(key))
        value = self.store.get(stored, key)
        if value is None:
            raise HostCallError(ErrorKind.NOT_FOUND)
        state.charge(len(value))
        return value

    @operation()
    def set(self, state: CallState, bucket: str, key: str, value: bytes) -> None:
        stored = self.store_name(state, bucket)
        state.charge(len(key) + len(value))
        self.store.set(stored, key, bytes(value))

    @operation()
    def delete(self, state: CallState, bucket: str, key: str) -> None:
        stored = self.store_name(state, bucket)
        state.charge(len(key))
        self.store.delete(stored, key)

    @operation()
    def list_keys(self, state: CallState, bucket: str, prefix: str, limit: U32) -> list[str]:
        stored = self.store_name(state, bucket)
        state.charge(len(prefix))
        keys = self.store.list_keys(stored, prefix, max(0, min(limit, MAX_LIST_LIMIT)))
        state.charge(sum(len(k) for k in keys))
        return keys

    @operation(since="0.2.0")
    def increment(self, state: CallState, bucket: str, key: str, delta: S64) -> S64:
        stored = self.store_name(state, bucket)
        state.charge(len(key) + 8)
        return self.store.increment(stored, key, delta)

    @operation(since="0.2.0")
    def compare_and_swap(self, state: CallState, bucket: str, key: str, expected: bytes | None, new: bytes) -> bool:
        stored = self.store_name(state, bucket)
        state.charge(len(key) + len(expected or b"") + len(new))
        return self.store.compare_and_swap(stored, key, None if expected is None else bytes(expected), bytes(new))

    @operation(since="0.2.0")
    def set_with_ttl(self, state: CallState, bucket: str, key: str, value: bytes, ttl_ms: U64) -> None:
        stored = self.store_name(state, bucket)
        state.charge(len(key) + len(value))
        self.store.set_with_ttl(stored, key, bytes(value), ttl_ms)

    @operation(since="0.2.0")
    def get_many(self, state: CallState, bucket: str, keys: list[str]) -> list[bytes | None]:
        stored = self.store_name(state, bucket)
        state.charge(sum(len(k) for k in keys))
        values = self.store.get_many(stored, list(keys))
        state.charge(sum(len(v) for v in values if v is not None))
        return values

    @operation(since="0.2.0")
    def set_many(self, state: CallState, bucket: str, entries: list[tuple[str, bytes]]) -> None:
        stored = self.store_name(state, bucket)
        state.charge(sum(len(k) + len(v) for k, v in entries))
        self.store.set_many(stored, [(k, bytes(v)) for k, v in entries])
