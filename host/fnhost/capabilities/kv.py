"""Key-value storage in buckets. A bucket is reachable only when the manifest grants it; two
functions of one namespace granted the same bucket share it (explicit sharing); across namespaces
only a share record lets them (fnhost.control.shares). Any granted bucket exists on first use."""

from __future__ import annotations

from ..stores.kv import KVStore
from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import U32, operation
from .state import CallState

KV = "kv"
MAX_LIST_LIMIT = 1000


class KvCapability(Capability):
    interface = "kv"
    grant_key = "kv"
    kind = KV
    noun = "kv bucket"

    def __init__(self, store: KVStore) -> None:
        self.store = store

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
