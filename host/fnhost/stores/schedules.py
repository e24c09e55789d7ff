"""Schedule state: one row per schedule (function/name) holding its next due tick, on either backend.

Claims are compare-and-set: `advance` moves `next_due_ms` only from the value the caller read, so
of several hosts (or nodes) that saw the same due tick exactly one moves it, and only that one
fires the tick. No lock is held while the caller decides; the losing host reads the row again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import SQLiteStore, sql_migration, translate_database_errors
from .database import AnyDatabase

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE schedule_state ("
        " key TEXT PRIMARY KEY,"  # function/name
        " spec TEXT NOT NULL,"  # the schedule's definition; a change restarts it
        " next_due_ms INTEGER NOT NULL,"
        " last_due_ms INTEGER,"
        " last_started_at REAL,"
        " last_invocation_id TEXT,"
        " last_outcome TEXT,"
        " fired INTEGER NOT NULL DEFAULT 0,"
        " skipped INTEGER NOT NULL DEFAULT 0,"
        " updated_at REAL NOT NULL"
        ")",
    ),
]


@dataclass(frozen=True)
class ScheduleState:
    spec: str
    next_due_ms: int
    last_due_ms: int | None
    last_started_at: float | None
    last_invocation_id: str | None
    last_outcome: str | None
    fired: int
    skipped: int


class ScheduleStateStore(SQLiteStore):
    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "schedules", MIGRATIONS)

    @translate_database_errors
    def get(self, key: str) -> ScheduleState | None:
        row = self._db.db.execute(
            "SELECT spec, next_due_ms, last_due_ms, last_started_at, last_invocation_id, last_outcome, fired,"
            " skipped FROM schedule_state WHERE key = ?",
            [key],
        ).fetchone()
        return None if row is None else ScheduleState(*row)

    @translate_database_errors
    def restart(self, key: str, spec: str, next_due_ms: int) -> None:
        """Start `key` (new, or its definition changed) at `next_due_ms`; a row already on `spec` is kept."""
        now = self._db.dialect.now
        with self._db.transaction() as db:
            db.execute(
                f"INSERT INTO schedule_state (key, spec, next_due_ms, updated_at) VALUES (?, ?, ?, {now})"
                " ON CONFLICT(key) DO UPDATE SET spec = excluded.spec, next_due_ms = excluded.next_due_ms,"
                " updated_at = excluded.updated_at WHERE schedule_state.spec <> excluded.spec",
                [key, spec, next_due_ms],
            )

    @translate_database_errors
    def advance(
        self, key: str, spec: str, from_due_ms: int, to_due_ms: int, fired_ms: int | None, skipped: int
    ) -> bool:
        """Move `key` from due tick `from_due_ms` to `to_due_ms`; True only for the one caller that moved it."""
        now = self._db.dialect.now
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE schedule_state SET next_due_ms = ?, last_due_ms = coalesce(?, last_due_ms),"
                f" fired = fired + ?, skipped = skipped + ?, updated_at = {now}"
                " WHERE key = ? AND spec = ? AND next_due_ms = ?",
                [to_due_ms, fired_ms, int(fired_ms is not None), skipped, key, spec, from_due_ms],
            )
            return bool(cursor.rowcount == 1)

    @translate_database_errors
    def record_run(self, key: str, tick_ms: int, started_at: float, invocation_id: str | None, outcome: str) -> None:
        """What tick `tick_ms` did (ignored if a later tick has been claimed since)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE schedule_state SET last_started_at = ?, last_invocation_id = ?, last_outcome = ?"
                " WHERE key = ? AND last_due_ms = ?",
                [started_at, invocation_id, outcome, key, tick_ms],
            )
