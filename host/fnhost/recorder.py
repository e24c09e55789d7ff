"""Invocation records written off the hot path: queued by the invoker, written in batches by one
background thread (one transaction per batch). Reads flush first, so a caller always sees the
record of an invocation that has returned."""

from __future__ import annotations

import builtins
import logging
import queue
import threading

from .stores import InvocationRecord, InvocationStore

log = logging.getLogger("fnhost")


class InvocationRecorder:
    def __init__(self, store: InvocationStore, max_batch: int = 256, interval_s: float = 0.05) -> None:
        self.store = store
        self._queue: queue.Queue[InvocationRecord | None] = queue.Queue()
        self._max_batch = max_batch
        self._interval = interval_s
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="fnhost-recorder", daemon=True)
        self._thread.start()

    def record(self, rec: InvocationRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(rec)

    def flush(self, timeout: float = 10.0) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def get(self, invocation_id: str) -> InvocationRecord | None:
        self.flush()
        return self.store.get(invocation_id)

    def list(
        self, function: str | None = None, limit: int = 50, before: str | None = None
    ) -> builtins.list[InvocationRecord]:
        self.flush()
        return self.store.list(function, limit=limit, before=before)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get(timeout=self._interval if len(batch) == 1 else 0)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self.store.record_many(batch)
            except Exception:  # a failed write must not stop later ones; the invocation itself succeeded
                log.exception("fnhost: could not record %d invocation(s)", len(batch))
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()
