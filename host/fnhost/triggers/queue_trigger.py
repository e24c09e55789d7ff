"""Queue triggers (event-source mappings): poll a queue, deliver batches to the event handler.

Delivery is at least once. A batch is claimed with `receive` (the messages become invisible for
the visibility timeout, their receive count goes up) and deleted only after the handler returns
`ok`: the messages it names in `failed-message-ids` (or all of them, when the invocation fails,
times out or the process dies) become visible again when the visibility timeout passes. A message
delivered `max_receive_count` times that fails again — or that is received once more after that,
e.g. after a crash — moves to the dead-letter queue, body unchanged, in one transaction with its
deletion from the source queue.

A batch runs at the largest chain depth of its messages (`fnhost.chains`). A batch deeper than the
host's limit (possible only after the limit was lowered) is not run: it is dead-lettered at once.

Mappings come from the `[[triggers.queue]]` tables of each function's `live` manifest and from
`QueueTriggers.create` (stored in `fnhost.stores.queue_mappings`); each mapping runs `pollers`
poller threads on every node (they compete through the store: SKIP LOCKED on PostgreSQL) and
follows redeploys within `refresh_interval_s`.

On PostgreSQL a poller's ack is sent by its own ack thread while the poller receives and invokes the
next batch, so the ack's round trip overlaps the next invocation instead of adding to it; at most one
ack per poller is outstanding (the next batch's ack waits for it). On SQLite the poller acks inline:
there an ack is no round trip, and on another thread it would take turns with the poller's own next
receive for the one writer lock (`QueueStore.acks_in_background`). A failed ack is raised in the
poller (logged, the messages come back after their visibility timeout).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..control.grants import authorize_deploy
from ..errors import Conflict, LoopDetected, ManifestError, NotFound
from ..manifest import BlobTrigger, Manifest, QueueTrigger
from ..namespaces import namespace_of, reference, resolve_manifest
from ..runtime import abi
from ..runtime.outcomes import Outcome
from ..stores import QueueMessage
from ..stores.queue_mappings import QueueMappingStore
from ._common import Counters, LiveManifests, Worker, log

if TYPE_CHECKING:
    from ..host import Host

AckHook = Callable[[str, list[str]], None]
"""Called with (queue, message ids) after an ack commits, with the ids it actually deleted."""


@dataclass(frozen=True)
class QueueMapping:
    """A queue mapped to a function's event handler (the manifest's `QueueTrigger` plus where it is from).

    A blob trigger is one too (`blob` set): its queue is the function's own, filled by the blob
    store in the transaction of each matching change, and each message is delivered alone as a
    `blob` event — with the same claims, retries and dead-letter queue as any queue message."""

    function: str
    trigger: QueueTrigger
    source: str  # "manifest" | "api"
    blob: BlobTrigger | None = None

    @property
    def id(self) -> str:
        return f"{self.function}:{self.trigger.queue}"

    @classmethod
    def of_blob(cls, function: str, b: BlobTrigger) -> QueueMapping:
        trigger = QueueTrigger(
            queue=b.queue,
            batch_size=1,
            visibility_timeout_s=b.visibility_timeout_s,
            max_receive_count=b.max_receive_count,
            dead_letter_queue=b.dead_letter_queue,
        )
        return cls(function, trigger, "manifest", b)

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "function": self.function, "source": self.source, **asdict(self.trigger)}
        if self.blob is not None:
            out["blob"] = {"bucket": self.blob.bucket, "prefix": self.blob.prefix, "events": list(self.blob.events)}
        return out


class QueuePoller:
    """Delivers one mapping's batches, one at a time, on its own thread (`index`: which of its pollers)."""

    def __init__(
        self,
        host: Host,
        mapping: QueueMapping,
        counters: Counters,
        on_ack: AckHook | None,
        idle_max_s: float,
        index: int = 0,
    ) -> None:
        self.host = host
        self.mapping = mapping
        self.counters = counters
        self.on_ack = on_ack
        self.idle_max_s = idle_max_s
        self._idle_s = 0.0
        name = f"fnhost-queue-{mapping.id}" + (f"-{index}" if index else "")
        self.worker = Worker(name, self.step, on_exit=self._last_ack)
        self._acks = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-ack")
        self._pending_ack: Future[None] | None = None

    def step(self) -> float:
        delivered = self.poll_once()
        self._idle_s = 0.0 if delivered else min(self.idle_max_s, max(0.01, self._idle_s * 2))
        return self._idle_s

    def poll_once(self) -> int:
        """Receive and deliver one batch; return the number of messages handed to the function."""
        t = self.mapping.trigger
        messages = self.host.queues.receive(t.queue, t.batch_size, t.visibility_timeout_s)
        if not messages:
            return 0
        window_ends = time.monotonic() + t.max_batching_window_ms / 1000
        while len(messages) < t.batch_size and time.monotonic() < window_ends and not self.worker.stopping.is_set():
            self.worker.stopping.wait(min(0.02, max(0.0, window_ends - time.monotonic())))
            messages += self.host.queues.receive(t.queue, t.batch_size - len(messages), t.visibility_timeout_s)
        expired = [m for m in messages if m.receive_count > t.max_receive_count]
        if expired:
            self._dead_letter(expired)
        batch = [m for m in messages if m.receive_count <= t.max_receive_count]
        if batch:
            self._deliver(batch)
        return len(batch)

    def _event(self, batch: list[QueueMessage]) -> abi.Event:
        namespace = namespace_of(self.mapping.function)
        if self.mapping.blob is not None:  # batch_size 1: one change
            (m,) = batch
            change = json.loads(m.body)
            bucket = reference(namespace, change["bucket"])
            return abi.BlobEvent(bucket, change["key"], change["event"], change["size"], change["sha256"],
                                 m.receive_count)  # fmt: skip
        queue = reference(namespace, self.mapping.trigger.queue)  # as the function's manifest names it
        return abi.QueueBatch(tuple(abi.BatchMessage(m.id, queue, m.body, m.receive_count) for m in batch))

    def _deliver(self, batch: list[QueueMessage]) -> None:
        t = self.mapping.trigger
        event = self._event(batch)
        self.counters.inc("queue_delivered", t.queue, len(batch))
        depth = max(m.chain_depth for m in batch)
        try:
            result = self.host.invoke_event(self.mapping.function, event, trigger="queue", chain_depth=depth)
        except NotFound:  # the function went away: hand the messages back to other consumers
            for m in batch:
                self.host.queues.release(t.queue, m.id)
            return
        except LoopDetected as e:
            log.warning("fnhost: queue %s -> %s: %s", t.queue, self.mapping.function, e)
            self._dead_letter(batch)
            return
        ids = {m.id for m in batch}
        if result.outcome is Outcome.OK and set(result.failed_message_ids) <= ids:
            failed = set(result.failed_message_ids)
        else:
            failed = ids
            if result.outcome is Outcome.OK:
                result_error = "failed-message-ids names messages that are not in the batch"
            else:
                result_error = result.error or result.outcome.value
            log.warning(
                "fnhost: queue %s -> %s: batch of %d failed (%s: %s); redelivered after %d s",
                t.queue, self.mapping.function, len(batch), result.outcome.value, result_error,
                t.visibility_timeout_s,
            )  # fmt: skip
        if failed:
            self.counters.inc("queue_failed", t.queue, len(failed))
        if result.outcome is Outcome.THROTTLED:  # not the messages' fault: make them visible again soon
            for m in batch:
                self.host.queues.release(t.queue, m.id, delay_s=1.0)
            return
        self._ack([m for m in batch if m.id not in failed])
        spent = [m for m in batch if m.id in failed and m.receive_count >= t.max_receive_count]
        if spent:
            self._dead_letter(spent)

    def _ack(self, deliveries: list[QueueMessage]) -> None:
        """Ack `deliveries` — on the ack thread when the store gains by it — after the previous ack (raised
        here if it failed) is done."""
        self.wait_for_ack()
        if not deliveries:
            return
        if self.host.queues.acks_in_background:
            self._pending_ack = self._acks.submit(self._ack_now, deliveries)
        else:
            self._ack_now(deliveries)

    def wait_for_ack(self) -> None:
        pending, self._pending_ack = self._pending_ack, None
        if pending is not None:
            pending.result()

    def _ack_now(self, deliveries: list[QueueMessage]) -> None:
        queue = self.mapping.trigger.queue
        acked = self.host.queues.ack_many(queue, deliveries)
        self.counters.inc("queue_acked", queue, len(acked))
        if self.on_ack is not None and acked:
            self.on_ack(queue, acked)

    def _last_ack(self) -> None:
        """On the worker's thread once it stopped: wait for the last ack, then end the ack thread."""
        try:
            self.wait_for_ack()
        except Exception:  # the messages come back after their visibility timeout
            log.warning("fnhost: %s: the last ack failed", self.worker.name, exc_info=True)
        self._acks.shutdown(wait=False)

    def _dead_letter(self, messages: list[QueueMessage]) -> None:
        t = self.mapping.trigger
        moved = self.host.queues.move(t.queue, messages, t.dead_letter_queue)  # those still ours
        if moved:
            self.counters.inc("dead_lettered", f"queue:{t.queue}", len(moved))
            log.warning(
                "fnhost: queue %s: %d message(s) moved to %s after %d receives: %s",
                t.queue, len(moved), t.dead_letter_queue, t.max_receive_count, ", ".join(moved),
            )  # fmt: skip
            if self.on_ack is not None:
                self.on_ack(t.queue, moved)


class QueueTriggers:
    """Every queue mapping of one host, and their pollers while started."""

    def __init__(
        self,
        host: Host,
        manifests: LiveManifests,
        counters: Counters,
        *,
        on_ack: AckHook | None = None,
        idle_max_s: float = 0.2,
    ) -> None:
        self.store = host.open_store(QueueMappingStore)
        self.host = host
        self.manifests = manifests
        self.counters = counters
        self.on_ack = on_ack
        self.idle_max_s = idle_max_s
        self._pollers: dict[str, list[QueuePoller]] = {}
        self._lock = threading.Lock()

    # mappings --------------------------------------------------------------------------------
    def list(self) -> builtins.list[QueueMapping]:
        """Manifest mappings (of live versions) and API mappings, sorted by function and queue."""
        current = self.manifests.current()
        out = [QueueMapping(m.name, t, "manifest") for m in current for t in m.queue_triggers]
        out += [QueueMapping.of_blob(m.name, b) for m in current for b in m.blob_triggers]
        declared = {(m.function, m.trigger.queue) for m in out}
        for function, config in self.store.list():
            trigger = QueueTrigger(**config)  # validated against the function when it was created
            if (function, trigger.queue) not in declared and self.manifests.reachable(function, trigger):
                out.append(QueueMapping(function, trigger, "api"))
        return sorted(out, key=lambda m: (m.function, m.trigger.queue))

    def create(self, function: str, queue: str, **options: Any) -> QueueMapping:
        """Map `queue` to `function` (options as in `[[triggers.queue]]`); validated like a manifest,
        and resolved in the function's namespace (another namespace's queue only while it is shared)."""
        version = self.host.get_version(function)
        config = {"queue": queue, **options}
        trigger = _trigger(config, version.manifest)
        mapping = dataclasses.replace(Manifest(name=version.manifest.name), queue_triggers=(trigger,))
        authorize_deploy(None, function, mapping, self.host.shares)
        trigger = resolve_manifest(function, mapping).queue_triggers[0]
        queue = trigger.queue
        taken = Conflict(f"queue '{queue}' is already mapped to '{function}'; delete that mapping first")
        if any(m.function == function and m.trigger.queue == queue for m in self.list()):
            raise taken
        if not self.store.add(function, queue, asdict(trigger)):
            raise taken
        self.refresh()
        return QueueMapping(function, trigger, "api")

    def delete(self, function: str, queue: str) -> None:
        """Delete an API mapping (manifest mappings go away with a redeploy without them)."""
        if not self.store.remove(function, queue):
            raise NotFound(f"no API mapping of queue '{queue}' to '{function}' (manifest mappings change by deploy)")
        self.refresh()

    # pollers ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start pollers for new or changed mappings and stop those of removed ones (if started)."""
        with self._lock:
            if self._stopped:
                return
            wanted = {m.id: m for m in self.list()}
            for key in [k for k, p in self._pollers.items() if wanted.get(k) != p[0].mapping]:
                for poller in self._pollers.pop(key):
                    poller.worker.stop()  # it sends its last ack as it ends
            for key, mapping in wanted.items():
                if key not in self._pollers:
                    pollers = [
                        QueuePoller(self.host, mapping, self.counters, self.on_ack, self.idle_max_s, index)
                        for index in range(mapping.trigger.pollers)
                    ]
                    self._pollers[key] = pollers
                    for poller in pollers:
                        poller.worker.start()

    _stopped = True

    def start(self) -> None:
        with self._lock:
            self._stopped = False
        self.refresh()

    def stop(self, timeout_s: float) -> bool:
        with self._lock:
            self._stopped = True
            pollers, self._pollers = [p for group in self._pollers.values() for p in group], {}
        for p in pollers:
            p.worker.stop()
        deadline = time.monotonic() + timeout_s
        return all([p.worker.join(max(0.0, deadline - time.monotonic())) for p in pollers])


def _trigger(config: dict[str, Any], manifest: Manifest | None = None) -> QueueTrigger:
    """A mapping's options validated by the manifest's own rules (against the function's limits)."""
    base = manifest or Manifest(name="mapping")
    data = {**base.to_dict(), "triggers": {"queue": [config]}}
    try:
        return Manifest.from_dict(data).queue_triggers[0]
    except ManifestError as e:
        raise ManifestError(str(e).replace("triggers.queue[0].", "mapping.")) from None


__all__ = ["AckHook", "QueueMapping", "QueuePoller", "QueueTriggers"]
