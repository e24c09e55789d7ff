"""Publishing to durable queues; each queue must be granted in the manifest."""

from __future__ import annotations

from wasmtime import Linker
from wasmtime.component import LinkerInstance

from ..manifest import Manifest
from ..stores.queues import QueueStore
from .base import I32, CallState, component_func, define_core

INTERFACE = "fnhost:function/queue@0.1.0"


class QueueCapability:
    name = "queue"

    def __init__(self, store: QueueStore) -> None:
        self.store = store

    def check_grants(self, manifest: Manifest) -> None:
        """Queue names are validated by the manifest; a queue exists once published to."""

    def publish(self, state: CallState, queue: str, body: bytes) -> str:
        stored = state.grants.queues.get(queue)
        if stored is None:
            raise state.deny(f"queue '{queue}'")
        state.charge(len(queue) + len(body))
        return self.store.publish(stored, bytes(body))

    def link_component(self, root: LinkerInstance) -> None:
        with root.add_instance(INTERFACE) as iface:
            iface.add_func("publish", component_func(self.publish))

    def link_core(self, linker: Linker) -> None:
        define_core(
            linker,
            "queue_publish",
            [I32] * 4,
            lambda s, m, qp, ql, bp, bl: self.publish(s, m.read_str(qp, ql), m.read(bp, bl)).encode(),
        )
