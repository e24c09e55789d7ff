"""Accepted asynchronous invokes: the durable table behind `fnhost.triggers.async_invoke` (its policy).

Every time is the database's clock (`Dialect.now`), read inside the write, so leases mean the
same on every node. A claim takes one due event: SQLite serializes claims (`BEGIN IMMEDIATE`);
PostgreSQL's claimers skip each other's locked row (`FOR UPDATE SKIP LOCKED`). The attempt number
is the fencing token: `finish` changes an event only while it is `running` that attempt, under a
row lock, so a worker whose lease was taken over cannot overwrite the newer attempt's result.
Idempotency keys are unique per function (a partial unique index); two submits with one key race
to one `INSERT ... ON CONFLICT DO NOTHING`, and the loser reads the winner's event.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._common import SQLiteStore, sql_migration, translate_database_errors
from .database import AnyDatabase
from .queues import QueueStore

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
    # the chain depth the event runs at (fnhost.chains): what its caller's request claimed
    sql_migration("ALTER TABLE async_invocations ADD COLUMN chain_depth INTEGER NOT NULL DEFAULT 0"),
]

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
PRUNE_BATCH = 1000


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


@dataclass(frozen=True)
class ClaimedAttempt:
    """One attempt a worker now holds the lease for."""

    id: str
    function: str
    qualifier: str | None
    payload: bytes
    attempt: int
    max_attempts: int
    dead_letter_queue: str | None
    chain_depth: int = 0


@dataclass(frozen=True)
class FinishedEvent:
    """What a dead-letter envelope is made of: the event as it ends, at the database's time."""

    id: str
    function: str
    qualifier: str | None
    payload: bytes
    attempt: int
    finished_at: float
    dead_letter_message_id: str | None = None


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


class AsyncInvocationStore(SQLiteStore):
    """The async-invoke table on either backend. Dead letters go to `queues` in the same transaction."""

    def __init__(self, db: AnyDatabase, queues: QueueStore) -> None:
        super().__init__(db, "async_invocations", MIGRATIONS)
        self._queues = queues

    def _now(self, db: Any) -> float:
        return float(db.execute(f"SELECT {self._db.dialect.now}").fetchone()[0])

    @translate_database_errors
    def submit(
        self,
        event_id: str,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None,
        max_attempts: int,
        lease_s: float,
        dead_letter_queue: str | None,
        idempotency_key: str | None,
        idempotency_window_s: float,
        chain_depth: int = 0,
    ) -> AsyncInvocation:
        """Store a queued event, or return the one already stored under `idempotency_key` within the window."""
        with self._db.transaction() as db:
            now = self._now(db)
            if idempotency_key is not None:  # an older event's key is free again once outside the window
                db.execute(
                    "UPDATE async_invocations SET idempotency_key = NULL"
                    " WHERE function = ? AND idempotency_key = ? AND created_at < ?",
                    [function, idempotency_key, now - idempotency_window_s],
                )
            inserted = db.execute(
                "INSERT INTO async_invocations (id, function, qualifier, payload, status, max_attempts, lease_s,"
                " dead_letter_queue, idempotency_key, created_at, updated_at, next_attempt_at, chain_depth)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (function, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
                " RETURNING id",
                [event_id, function, qualifier, payload, QUEUED, max_attempts, lease_s, dead_letter_queue,
                 idempotency_key, now, now, now, chain_depth],
            ).fetchone()  # fmt: skip
            if inserted is None:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM async_invocations WHERE function = ? AND idempotency_key = ?",
                    [function, idempotency_key],
                ).fetchone()
                return _invocation(row)
            row = db.execute(f"SELECT {_COLUMNS} FROM async_invocations WHERE id = ?", [event_id]).fetchone()
        return _invocation(row)

    @translate_database_errors
    def get(self, event_id: str) -> AsyncInvocation | None:
        row = self._db.db.execute(f"SELECT {_COLUMNS} FROM async_invocations WHERE id = ?", [event_id]).fetchone()
        return None if row is None else _invocation(row)

    @translate_database_errors
    def list(
        self, function: str | None = None, status: str | None = None, limit: int = 50
    ) -> builtins.list[AsyncInvocation]:
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

    @translate_database_errors
    def pending(self) -> int:
        """Events not finished yet (queued or running)."""
        row = self._db.db.execute("SELECT count(*) FROM async_invocations WHERE status IN (?, ?)", [QUEUED, RUNNING])
        return int(row.fetchone()[0])

    @translate_database_errors
    def claim(self) -> ClaimedAttempt | None:
        """Take the lease of one due event (queued and due, or running with its lease run out)."""
        with self._db.transaction() as db:
            now = self._now(db)
            row = db.execute(
                "SELECT id, function, qualifier, payload, attempts, lease_s, max_attempts, dead_letter_queue,"
                " chain_depth FROM async_invocations"
                " WHERE status IN (?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at"
                f" LIMIT 1{self._db.dialect.skip_locked}",
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
        return ClaimedAttempt(row[0], row[1], row[2], bytes(row[3]), attempt, row[6], row[7], row[8])

    @translate_database_errors
    def finish(
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
        uncount: bool = False,
        dead_letter: Callable[[FinishedEvent], bytes] | None = None,
    ) -> FinishedEvent | None:
        """Record attempt `attempt`'s result; None if a newer attempt owns the event (the lease ran out).

        With `dead_letter`, and a dead-letter queue on the event, the message it makes is published in
        the same transaction as the final status: both happen or neither.
        """
        with self._db.transaction() as db:
            now = self._now(db)
            row = db.execute(
                "SELECT function, qualifier, payload, dead_letter_queue FROM async_invocations"
                f" WHERE id = ? AND status = ? AND attempts = ?{self._db.dialect.for_update}",
                [event_id, RUNNING, attempt],
            ).fetchone()
            if row is None:
                return None
            event = FinishedEvent(event_id, row[0], row[1], bytes(row[2]), attempt, now)
            dlq_message = None
            if dead_letter is not None and row[3]:
                dlq_message = self._queues.publish(row[3], dead_letter(event))
            db.execute(
                "UPDATE async_invocations SET status = ?, next_attempt_at = ?, updated_at = ?, outcome = ?,"
                " error = ?, output = ?, invocation_id = coalesce(?, invocation_id), dead_letter_message_id = ?,"
                " attempts = attempts - ? WHERE id = ?",
                [status, now + retry_in_s, now, outcome, error, output, invocation_id, dlq_message, int(uncount),
                 event_id],
            )  # fmt: skip
        return dataclasses.replace(event, dead_letter_message_id=dlq_message)

    @translate_database_errors
    def prune(self, retention_s: float) -> int:
        """Delete finished events older than `retention_s`, a bounded slice at a time; how many went."""
        with self._db.transaction() as db:
            cutoff = self._now(db) - retention_s
            return int(
                db.execute(
                    "DELETE FROM async_invocations WHERE id IN (SELECT id FROM async_invocations"
                    " WHERE status IN (?, ?) AND updated_at < ? LIMIT ?)",
                    [SUCCEEDED, FAILED, cutoff, PRUNE_BATCH],
                ).rowcount
            )
