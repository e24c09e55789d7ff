"""Asynchronous invokes: accept an event durably, run it later, retry it, dead-letter it.

The policy lives here; the table lives in `fnhost.stores.async_invocations` (on either backend).
`submit` commits the event before it returns (the caller's 202). Workers claim one due event at a
time, setting a lease (the function's timeout plus a margin): a worker that dies mid-attempt loses
the lease and the event is claimed again, so every accepted event runs at least once. The attempt
number is the fencing token: a worker whose lease was taken over cannot overwrite the newer
attempt's result.

A failed attempt is retried `[async] retries` times after an exponential backoff with jitter
(`base * 2**(attempt-1)`, capped, times a uniform factor in [0.5, 1)); a throttled attempt does not
count. When the retries are spent the event is `failed` and, if the function names
`[async] dead_letter_queue`, a JSON envelope (payload, error, outcome, attempts) is published there
in the same transaction.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..capabilities.queue import QUEUE
from ..errors import NotFound
from ..namespaces import is_foreign, namespace_of, resolve_manifest
from ..runtime.outcomes import Outcome
from ..stores import InvalidArgument, new_sortable_id
from ..stores._common import bytes_within
from ..stores.async_invocations import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    AsyncInvocation,
    AsyncInvocationStore,
    ClaimedAttempt,
    FinishedEvent,
)
from ._common import Counters, log

if TYPE_CHECKING:
    from ..host import Host

LEASE_MARGIN_S = 10.0
MAX_IDEMPOTENCY_KEY = 256
DLQ_ENVELOPE_BYTES = 4096  # room for the envelope's other fields beside the base64 payload
PRUNE_EVERY_S = 60.0

__all__ = ["FAILED", "QUEUED", "RUNNING", "SUCCEEDED", "AsyncInvocation", "AsyncInvocations", "backoff_s"]


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before the retry that follows failed attempt `attempt` (1-based): exponential, capped,
    with "equal jitter" (uniform in [half, full) of the exponential delay)."""
    delay = min(max_s, base_s * 2.0 ** (attempt - 1))
    return delay * (0.5 + 0.5 * (rng or random).random())


class AsyncInvocations:
    """The async-invoke policy of one host (retries, backoff, dead letters) and the step its workers run."""

    def __init__(
        self,
        host: Host,
        counters: Counters,
        *,
        retry_base_s: float = 1.0,
        retry_max_s: float = 300.0,
        idempotency_window_s: float = 3600.0,
        retention_s: float = 86400.0,
        lease_margin_s: float = LEASE_MARGIN_S,
    ) -> None:
        if idempotency_window_s > retention_s:
            raise ValueError("idempotency_window_s must not exceed retention_s (finished records are deleted)")
        self.store = host.open_store(lambda db: AsyncInvocationStore(db, host.queues))
        self.host = host
        self.counters = counters
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.idempotency_window_s = idempotency_window_s
        self.retention_s = retention_s
        self.lease_margin_s = lease_margin_s
        self.max_payload_bytes = (host.queues.max_message_bytes - DLQ_ENVELOPE_BYTES) * 3 // 4
        self.on_submit: list[Callable[[], None]] = []  # run after a submit commits (wake the workers)
        self._last_prune = -PRUNE_EVERY_S

    # accepting -----------------------------------------------------------------------------------
    def submit(
        self,
        function: str,
        payload: bytes = b"",
        *,
        qualifier: str | int | None = None,
        idempotency_key: str | None = None,
        chain_depth: int = 0,
    ) -> AsyncInvocation:
        """Store an event for `function` and return it (status 'queued'); it is durable on return.
        It runs at `chain_depth` (fnhost.chains); one deeper than the host's limit is `LoopDetected`.

        With an `idempotency_key`, a second submit for the same function and key within
        `idempotency_window_s` returns the first event instead of storing another.
        Raises `NotFound` for an unknown function or qualifier.
        """
        self.host.chains.admit(function, chain_depth)
        version = self.host.get_version(function, qualifier)
        body = bytes_within("async invoke payload", payload, self.max_payload_bytes)
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str)
            or not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
            or not idempotency_key.isprintable()
        ):
            raise InvalidArgument(
                f"idempotency key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters, got {idempotency_key!r}"
            )
        config = resolve_manifest(version.name, version.manifest).async_config  # its DLQ in its namespace
        event_id = new_sortable_id()
        event = self.store.submit(
            event_id,
            function,
            body,
            qualifier=None if qualifier is None else str(qualifier),
            max_attempts=config.retries + 1,
            lease_s=version.manifest.limits.timeout_ms / 1000 + self.lease_margin_s,
            dead_letter_queue=config.dead_letter_queue,
            idempotency_key=idempotency_key,
            idempotency_window_s=self.idempotency_window_s,
            chain_depth=chain_depth,
        )
        if event.id == event_id:  # not an earlier event with the same idempotency key
            self.counters.inc("async_submitted", function)
        for wake in self.on_submit:
            wake()
        return event

    def get(self, invocation_id: str) -> AsyncInvocation:
        event = self.store.get(invocation_id)
        if event is None:
            raise NotFound(f"no async invocation {invocation_id!r}; finished ones are kept {self.retention_s:g} s")
        return event

    def list(self, function: str | None = None, status: str | None = None, limit: int = 50) -> list[AsyncInvocation]:
        return self.store.list(function, status, limit)

    def pending(self) -> int:
        """Events not finished yet (queued or running)."""
        return self.store.pending()

    # running -------------------------------------------------------------------------------------
    def step(self) -> float:
        """Run one due event if there is one. Returns how long the calling worker may wait (0: go on)."""
        claimed = self.store.claim()
        if claimed is None:
            self._prune()
            return 0.25
        self._attempt(claimed)
        return 0.0

    def _claim(self) -> ClaimedAttempt | None:
        """Take one due event's lease without running it (what a worker that then dies does)."""
        return self.store.claim()

    def _attempt(self, claimed: ClaimedAttempt) -> None:
        event_id, function, attempt = claimed.id, claimed.function, claimed.attempt
        try:
            result = self.host.invoke_event(
                function, claimed.payload, qualifier=claimed.qualifier, trigger="async", chain_depth=claimed.chain_depth
            )
        except NotFound as e:  # deleted since it was accepted: retrying cannot help
            self._finish(claimed, FAILED, "not_found", str(e), None, None, final=True)
            return
        except Exception as e:
            log.exception("fnhost: async invocation %s of %s: attempt %d did not run", event_id, function, attempt)
            self._failed(claimed, "unavailable", f"the host could not run it: {e}", None)
            return
        if result.outcome is Outcome.OK:
            self._finish(claimed, SUCCEEDED, "ok", None, result.output, result.invocation_id)
            self.counters.inc("async_succeeded", function)
        elif result.outcome is Outcome.THROTTLED:  # not the event's fault: try again soon, uncounted
            delay = backoff_s(1, 0.2, 0.2)
            self._finish(claimed, QUEUED, "throttled", result.error, None, None, retry_in_s=delay, uncount=True)
        else:
            self._failed(claimed, result.outcome.value, result.error, result.invocation_id)

    def _failed(self, claimed: ClaimedAttempt, outcome: str, error: str | None, invocation_id: str | None) -> None:
        if claimed.attempt < claimed.max_attempts:
            delay = backoff_s(claimed.attempt, self.retry_base_s, self.retry_max_s)
            self._finish(claimed, QUEUED, outcome, error, None, invocation_id, retry_in_s=delay)
            self.counters.inc("async_retries", claimed.function)
        else:
            self._finish(claimed, FAILED, outcome, error, None, invocation_id, final=True)

    def _finish(
        self,
        claimed: ClaimedAttempt,
        status: str,
        outcome: str,
        error: str | None,
        output: bytes | None,
        invocation_id: str | None,
        *,
        retry_in_s: float = 0.0,
        final: bool = False,
        uncount: bool = False,
    ) -> None:
        def envelope(event: FinishedEvent) -> bytes:
            return json.dumps({
                "async_invocation_id": event.id,
                "function": event.function,
                "qualifier": event.qualifier,
                "attempts": event.attempt,
                "outcome": outcome,
                "error": error,
                "invocation_id": invocation_id,
                "failed_at": event.finished_at,
                "payload_base64": base64.b64encode(event.payload).decode(),
            }).encode()

        dlq, namespace = claimed.dead_letter_queue, namespace_of(claimed.function)
        if final and dlq and is_foreign(namespace, dlq) and not self.host.shares.active(QUEUE, dlq, namespace):
            log.warning("fnhost: async invocation %s: dead-letter queue %s is no longer shared", claimed.id, dlq)
            final_dlq = False
        else:
            final_dlq = final
        finished = self.store.finish(
            claimed.id, claimed.attempt, status, outcome, error, output, invocation_id,
            retry_in_s=retry_in_s, uncount=uncount, dead_letter=envelope if final_dlq else None,
        )  # fmt: skip
        if finished is None:  # our lease ran out and a newer attempt owns the event
            log.warning("fnhost: async invocation %s: attempt %d finished after its lease", claimed.id, claimed.attempt)
            return
        if final:
            self.counters.inc("async_failed", finished.function)
            if finished.dead_letter_message_id:
                self.counters.inc("dead_lettered", f"async:{finished.function}")

    def _prune(self) -> None:
        """Delete finished events older than the retention, a bounded slice at a time, at most once a minute."""
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        self.store.prune(self.retention_s)
