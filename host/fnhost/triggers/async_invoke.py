"""Asynchronous invokes: accept an event durably, run it later, retry it, dead-letter it.

`submit` commits the event to SQLite before it returns (the caller's 202). Workers claim one due
event at a time in a `BEGIN IMMEDIATE` transaction, setting a lease (`next_attempt_at` of a
`running` row = the function's timeout plus a margin): a worker that dies mid-attempt loses the
lease and the event is claimed again, so every accepted event runs at least once. The attempt
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..namespaces import QUEUE, is_foreign, namespace_of, resolve_manifest
from ..runtime.outcomes import Outcome
from ..stores import InvalidArgument, new_sortable_id
from ..stores._common import SQLiteStore, bytes_within, sql_migration, translate_sqlite_errors
from ._common import Counters, log

if TYPE_CHECKING:
    from ..host import Host

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE async_invocations ("
        " id TEXT PRIMARY KEY,"
        " function TEXT NOT NULL,"
        " qualifier TEXT,"
        " payload BLOB NOT NULL,"
        " status TEXT NOT NULL,"  # queued | running | succeeded | failed
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " max_attempts INTEGER NOT NULL,"
        " lease_s REAL NOT NULL,"
        " dead_letter_queue TEXT,"
        " idempotency_key TEXT,"
        " created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL,"
        " next_attempt_at REAL NOT NULL,"  # queued: when it may run; running: when the lease ends
        " invocation_id TEXT,"
        " outcome TEXT,"
        " error TEXT,"
        " output BLOB,"
        " dead_letter_message_id TEXT"
        ")",
        "CREATE INDEX async_invocations_due ON async_invocations (status, next_attempt_at)",
        "CREATE UNIQUE INDEX async_invocations_idempotency ON async_invocations (function, idempotency_key)"
        " WHERE idempotency_key IS NOT NULL",
        "CREATE INDEX async_invocations_finished ON async_invocations (updated_at)"
        " WHERE status IN ('succeeded', 'failed')",
    ),
]

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
LEASE_MARGIN_S = 10.0
MAX_IDEMPOTENCY_KEY = 256
DLQ_ENVELOPE_BYTES = 4096  # room for the envelope's other fields beside the base64 payload


@dataclass(frozen=True)
class AsyncInvocation:
    """An accepted asynchronous invoke and where it stands."""

    id: str
    function: str
    qualifier: str | None
    status: str
    """'queued' (waiting for its first attempt or a retry), 'running', 'succeeded' or 'failed'."""
    attempts: int
    max_attempts: int
    created_at: float
    updated_at: float
    next_attempt_at: float | None
    """When a queued event may run next (None once it has finished)."""
    idempotency_key: str | None
    invocation_id: str | None
    """The id of the latest attempt's invocation record (logs, REPORT line)."""
    outcome: str | None
    error: str | None
    output: bytes | None
    dead_letter_queue: str | None
    dead_letter_message_id: str | None

    @property
    def finished(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["output"] = None if self.output is None else self.output.decode("utf-8", "replace")
        return d


_COLUMNS = (
    "id, function, qualifier, status, attempts, max_attempts, created_at, updated_at, next_attempt_at, "
    "idempotency_key, invocation_id, outcome, error, output, dead_letter_queue, dead_letter_message_id"
)


def _invocation(row: Any) -> AsyncInvocation:
    values = list(row)
    if values[3] in (SUCCEEDED, FAILED):
        values[8] = None
    if values[13] is not None:
        values[13] = bytes(values[13])
    return AsyncInvocation(*values)


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before the retry that follows failed attempt `attempt` (1-based): exponential, capped,
    with "equal jitter" (uniform in [half, full) of the exponential delay)."""
    delay = min(max_s, base_s * 2.0 ** (attempt - 1))
    return delay * (0.5 + 0.5 * (rng or random).random())


class AsyncInvocations(SQLiteStore):
    """The durable async-invoke queue of one host and the workers that drain it."""

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
        super().__init__(host.db, "async_invocations", MIGRATIONS)
        if idempotency_window_s > retention_s:
            raise ValueError("idempotency_window_s must not exceed retention_s (finished records are deleted)")
        self.host = host
        self.counters = counters
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.idempotency_window_s = idempotency_window_s
        self.retention_s = retention_s
        self.lease_margin_s = lease_margin_s
        self.max_payload_bytes = (host.queues.max_message_bytes - DLQ_ENVELOPE_BYTES) * 3 // 4
        self.on_submit: list[Any] = []  # callables run after a submit commits (wake the workers)
        self._last_prune = 0.0

    # accepting -----------------------------------------------------------------------------------
    @translate_sqlite_errors
    def submit(
        self,
        function: str,
        payload: bytes = b"",
        *,
        qualifier: str | int | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncInvocation:
        """Store an event for `function` and return it (status 'queued'); it is durable on return.

        With an `idempotency_key`, a second submit for the same function and key within
        `idempotency_window_s` returns the first event instead of storing another.
        Raises `NotFound` for an unknown function or qualifier.
        """
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
        qualifier_text = None if qualifier is None else str(qualifier)
        with self._db.transaction() as db:
            now = time.time()
            if idempotency_key is not None:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM async_invocations WHERE function = ? AND idempotency_key = ?",
                    [function, idempotency_key],
                ).fetchone()
                if row is not None and row[6] >= now - self.idempotency_window_s:
                    return _invocation(row)
                if row is not None:  # outside the window: the key is free again
                    db.execute("UPDATE async_invocations SET idempotency_key = NULL WHERE id = ?", [row[0]])
            invocation_id = new_sortable_id()
            db.execute(
                "INSERT INTO async_invocations (id, function, qualifier, payload, status, max_attempts, lease_s,"
                " dead_letter_queue, idempotency_key, created_at, updated_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    invocation_id, function, qualifier_text, body, QUEUED, config.retries + 1,
                    version.manifest.limits.timeout_ms / 1000 + self.lease_margin_s, config.dead_letter_queue,
                    idempotency_key, now, now, now,
                ],
            )  # fmt: skip
        self.counters.inc("async_submitted", function)
        for wake in self.on_submit:
            wake()
        return self.get(invocation_id)

    @translate_sqlite_errors
    def get(self, invocation_id: str) -> AsyncInvocation:
        row = self._db.db.execute(f"SELECT {_COLUMNS} FROM async_invocations WHERE id = ?", [invocation_id]).fetchone()
        if row is None:
            raise NotFound(f"no async invocation {invocation_id!r}; finished ones are kept {self.retention_s:g} s")
        return _invocation(row)

    @translate_sqlite_errors
    def list(self, function: str | None = None, status: str | None = None, limit: int = 50) -> list[AsyncInvocation]:
        where, params = [], []
        if function is not None:
            where.append("function = ?")
            params.append(function)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {_COLUMNS} FROM async_invocations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.db.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_invocation(row) for row in rows]

    @translate_sqlite_errors
    def pending(self) -> int:
        """Events not finished yet (queued or running)."""
        row = self._db.db.execute("SELECT count(*) FROM async_invocations WHERE status IN (?, ?)", [QUEUED, RUNNING])
        return int(row.fetchone()[0])

    # running -------------------------------------------------------------------------------------
    def step(self) -> float:
        """Run one due event if there is one. Returns how long the calling worker may wait (0: go on)."""
        claimed = self._claim()
        if claimed is None:
            self._prune()
            return 0.25
        self._attempt(*claimed)
        return 0.0

    @translate_sqlite_errors
    def _claim(self) -> tuple[str, str, str | None, bytes, int] | None:
        with self._db.transaction() as db:
            now = time.time()
            row = db.execute(
                "SELECT id, function, qualifier, payload, attempts, lease_s FROM async_invocations"
                " WHERE status IN (?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 1",
                [QUEUED, RUNNING, now],
            ).fetchone()
            if row is None:
                return None
            attempt = row[4] + 1
            db.execute(
                "UPDATE async_invocations SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?"
                " WHERE id = ?",
                [RUNNING, attempt, now + row[5], now, row[0]],
            )
        return row[0], row[1], row[2], bytes(row[3]), attempt

    def _attempt(self, event_id: str, function: str, qualifier: str | None, payload: bytes, attempt: int) -> None:
        try:
            result = self.host.invoke_event(function, payload, qualifier=qualifier, trigger="async")
        except NotFound as e:  # deleted since it was accepted: retrying cannot help
            self._finish(event_id, attempt, FAILED, "not_found", str(e), None, None, final=True)
            return
        except Exception as e:
            log.exception("fnhost: async invocation %s of %s: attempt %d did not run", event_id, function, attempt)
            self._failed(event_id, function, attempt, "unavailable", f"the host could not run it: {e}", None)
            return
        if result.outcome is Outcome.OK:
            self._finish(event_id, attempt, SUCCEEDED, "ok", None, result.output, result.invocation_id)
            self.counters.inc("async_succeeded", function)
        elif result.outcome is Outcome.THROTTLED:  # not the event's fault: try again soon, uncounted
            delay = backoff_s(1, 0.2, 0.2)
            self._finish(
                event_id, attempt, QUEUED, "throttled", result.error, None, None, retry_in_s=delay, uncount=True
            )
        else:
            self._failed(event_id, function, attempt, result.outcome.value, result.error, result.invocation_id)

    def _failed(
        self, event_id: str, function: str, attempt: int, outcome: str, error: str | None, invocation_id: str | None
    ) -> None:
        row = self._db.db.execute("SELECT max_attempts FROM async_invocations WHERE id = ?", [event_id]).fetchone()
        if row is not None and attempt < row[0]:
            delay = backoff_s(attempt, self.retry_base_s, self.retry_max_s)
            self._finish(event_id, attempt, QUEUED, outcome, error, None, invocation_id, retry_in_s=delay)
            self.counters.inc("async_retries", function)
        else:
            self._finish(event_id, attempt, FAILED, outcome, error, None, invocation_id, final=True)

    @translate_sqlite_errors
    def _finish(
        self,
        event_id: str,
        attempt: int,
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
        with self._db.transaction() as db:
            now = time.time()
            row = db.execute(
                "SELECT function, qualifier, payload, dead_letter_queue FROM async_invocations"
                " WHERE id = ? AND status = ? AND attempts = ?",
                [event_id, RUNNING, attempt],
            ).fetchone()
            if row is None:  # our lease ran out and a newer attempt owns the event
                log.warning("fnhost: async invocation %s: attempt %d finished after its lease", event_id, attempt)
                return
            dlq_message = None
            namespace, dlq = namespace_of(row[0]), row[3]
            if final and dlq and is_foreign(namespace, dlq) and not self.host.shares.active(QUEUE, dlq, namespace):
                log.warning("fnhost: async invocation %s: dead-letter queue %s is no longer shared", event_id, row[3])
            elif final and row[3]:
                envelope = {
                    "async_invocation_id": event_id,
                    "function": row[0],
                    "qualifier": row[1],
                    "attempts": attempt,
                    "outcome": outcome,
                    "error": error,
                    "invocation_id": invocation_id,
                    "failed_at": now,
                    "payload_base64": base64.b64encode(bytes(row[2])).decode(),
                }
                dlq_message = self.host.queues.publish(row[3], json.dumps(envelope).encode())
            db.execute(
                "UPDATE async_invocations SET status = ?, next_attempt_at = ?, updated_at = ?, outcome = ?,"
                " error = ?, output = ?, invocation_id = coalesce(?, invocation_id), dead_letter_message_id = ?,"
                " attempts = attempts - ? WHERE id = ?",
                [
                    status,
                    now + retry_in_s,
                    now,
                    outcome,
                    error,
                    output,
                    invocation_id,
                    dlq_message,
                    int(uncount),
                    event_id,
                ],
            )
        if final:
            self.counters.inc("async_failed", row[0])
            if dlq_message:
                self.counters.inc("dead_lettered", f"async:{row[0]}")

    @translate_sqlite_errors
    def _prune(self) -> None:
        """Delete finished events older than the retention, a bounded slice at a time."""
        now = time.time()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM async_invocations WHERE id IN (SELECT id FROM async_invocations"
                " WHERE status IN (?, ?) AND updated_at < ? LIMIT 1000)",
                [SUCCEEDED, FAILED, now - self.retention_s],
            )
