"""Publishing to durable queues; each queue must be granted in the manifest. A queue trigger's queue
and dead-letter queues are resources the manifest hands its function too (authorized at deploy).
A message carries the chain depth of the invocation that publishes it, plus one (`fnhost.chains`)."""

from __future__ import annotations

from ..manifest import Manifest
from ..stores.errors import ChainTooDeep
from ..stores.queues import QueueStore
from .base import Capability
from .operations import operation
from .state import CallState

QUEUE = "queue"


class QueueCapability(Capability):
    interface = "queue"
    grant_key = "queues"
    kind = QUEUE
    noun = "queue"

    def __init__(self, store: QueueStore) -> None:
        self.store = store

    @classmethod
    def resources(cls, manifest: Manifest) -> list[tuple[str, str]]:
        named = super().resources(manifest)
        for i, t in enumerate(manifest.queue_triggers):
            named.append((t.queue, f"triggers.queue[{i}].queue"))
            named.append((t.dead_letter_queue, f"triggers.queue[{i}].dead_letter_queue"))
        if manifest.async_config.dead_letter_queue is not None:
            named.append((manifest.async_config.dead_letter_queue, "async.dead_letter_queue"))
        return named

    @operation()
    def publish(self, state: CallState, queue: str, body: bytes) -> str:
        stored = self.store_name(state, queue)
        state.charge(len(queue) + len(body))
        try:
            return self.store.publish(stored, bytes(body), chain_depth=state.chain_depth + 1)
        except ChainTooDeep as e:
            raise state.stop_chain(e) from None
