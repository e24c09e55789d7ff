"""Key-value storage in buckets. A bucket is reachable only when the manifest grants it; two
functions of one namespace granted the same bucket share it (explicit sharing); across namespaces
only a share record lets them (fnhost.control.shares)."""

from __future__ import annotations

from wasmtime import Linker
from wasmtime.component import LinkerInstance

from ..manifest import Manifest
from ..stores.kv import KVStore
from .base import I32, CallState, ErrorKind, HostCallError, component_func, define_core, encode_strings

INTERFACE = "fnhost:function/kv@0.1.0"
MAX_LIST_LIMIT = 1000


class KvCapability:
    name = "kv"

    def __init__(self, store: KVStore) -> None:
        self.store = store

    def check_grants(self, manifest: Manifest) -> None:
        """Bucket names are validated by the manifest; any granted bucket exists on first use."""

    # -- the operations, shared by both ABIs ------------------------------------------------------
    def _allowed(self, state: CallState, bucket: str) -> str:
        """The store name of a granted bucket (fnhost.namespaces); `denied` for any other."""
        stored = state.grants.kv.get(bucket)
        if stored is None:
            raise state.deny(f"kv bucket '{bucket}'")
        return stored

    def get(self, state: CallState, bucket: str, key: str) -> bytes:
        stored = self._allowed(state, bucket)
        state.charge(len(key))
        value = self.store.get(stored, key)
        if value is None:
            raise HostCallError(ErrorKind.NOT_FOUND)
        state.charge(len(value))
        return value

    def set(self, state: CallState, bucket: str, key: str, value: bytes) -> None:
        stored = self._allowed(state, bucket)
        state.charge(len(key) + len(value))
        self.store.set(stored, key, bytes(value))

    def delete(self, state: CallState, bucket: str, key: str) -> None:
        stored = self._allowed(state, bucket)
        state.charge(len(key))
        self.store.delete(stored, key)

    def list_keys(self, state: CallState, bucket: str, prefix: str, limit: int) -> list[str]:
        stored = self._allowed(state, bucket)
        state.charge(len(prefix))
        keys = self.store.list_keys(stored, prefix, max(0, min(limit, MAX_LIST_LIMIT)))
        state.charge(sum(len(k) for k in keys))
        return keys

    # -- linking --------------------------------------------------------------------------------
    def link_component(self, root: LinkerInstance) -> None:
        with root.add_instance(INTERFACE) as iface:
            iface.add_func("get", component_func(self.get))
            iface.add_func("set", component_func(self.set))
            iface.add_func("delete", component_func(self.delete))
            iface.add_func("list-keys", component_func(self.list_keys))

    def link_core(self, linker: Linker) -> None:
        define_core(
            linker,
            "kv_get",
            [I32] * 4,
            lambda s, m, bp, bl, kp, kl: self.get(s, m.read_str(bp, bl), m.read_str(kp, kl)),
        )
        define_core(
            linker,
            "kv_set",
            [I32] * 6,
            lambda s, m, bp, bl, kp, kl, vp, vl: self.set(
                s, m.read_str(bp, bl), m.read_str(kp, kl), m.read(vp, vl)
            ),
        )
        define_core(
            linker,
            "kv_delete",
            [I32] * 4,
            lambda s, m, bp, bl, kp, kl: self.delete(s, m.read_str(bp, bl), m.read_str(kp, kl)),
        )
        define_core(
            linker,
            "kv_list_keys",
            [I32] * 5,
            lambda s, m, bp, bl, pp, pl, limit: encode_strings(
                self.list_keys(s, m.read_str(bp, bl), m.read_str(pp, pl), limit)
            ),
        )
