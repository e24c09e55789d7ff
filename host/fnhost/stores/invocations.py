"""Records of finished invocations, newest first, with bounded retention per function.

Retention is exact and cheap: after each insert, the rows of that function older than its
`max_per_function`-th newest are deleted. Both the cut-off lookup and the delete walk the
`(function, started_at, id)` index, so the cost does not grow with the table.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

from ..errors import NotFound
from ._common import SQLiteStore, int_in_range, sql_migration, translate_sqlite_errors
from .database import AnyDatabase, executemany

MAX_LIST_LIMIT = 1000
"""The most records one `list` call returns."""

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE invocations ("
        " id TEXT PRIMARY KEY,"
        " function TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        " trigger TEXT NOT NULL,"
        " outcome TEXT NOT NULL,"
        " error TEXT,"
        " started_at REAL NOT NULL,"
        " duration_ms REAL NOT NULL,"
        " billed_ms INTEGER NOT NULL,"
        " fuel_consumed INTEGER NOT NULL,"
        " memory_used_bytes INTEGER NOT NULL,"
        " memory_limit_mb INTEGER NOT NULL,"
        " logs TEXT NOT NULL,"
        " report TEXT NOT NULL"
        ")",
        "CREATE INDEX invocations_by_function ON invocations (function, started_at, id)",
        "CREATE INDEX invocations_by_time ON invocations (started_at, id)",
    ),
]


@dataclass(frozen=True)
class InvocationRecord:
    id: str
    function: str
    version: int
    trigger: str
    """What started it: 'invoke', 'http', 'queue', 'schedule'..."""
    outcome: str
    """An `Outcome` value: 'ok', 'timeout', 'fuel_exhausted'..."""
    error: str | None
    started_at: float
    """Unix seconds."""
    duration_ms: float
    billed_ms: int
    fuel_consumed: int
    memory_used_bytes: int
    memory_limit_mb: int
    logs: str
    """The invocation's log lines, already bounded by the caller."""
    report: str
    """The REPORT line."""


_COLUMNS = ", ".join(f.name for f in fields(InvocationRecord))
_UPSERT = (
    f"INSERT INTO invocations ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(InvocationRecord)))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{f.name} = excluded.{f.name}" for f in fields(InvocationRecord) if f.name != "id")
)


def _record(row: Any) -> InvocationRecord:
    return InvocationRecord(*row)


class InvocationStore(SQLiteStore):
    """Invocation records over the host database, at most `max_per_function` kept per function."""

    def __init__(self, db: AnyDatabase, max_per_function: int = 1000) -> None:
        super().__init__(db, "invocations", MIGRATIONS)
        self.max_per_function = int_in_range("max_per_function", max_per_function, 1, 10**9)

    def record(self, rec: InvocationRecord) -> None:
        """Store `rec` (replacing a record with the same id) and apply retention to its function."""
        self.record_many([rec])

    @translate_sqlite_errors
    def record_many(self, recs: Sequence[InvocationRecord]) -> None:
        """Store several records in one transaction, then apply retention once per function."""
        with self._db.transaction() as db:
            executemany(db, _UPSERT, [astuple(rec) for rec in recs])
            for function in {rec.function for rec in recs}:
                db.execute(
                    "DELETE FROM invocations WHERE function = ? AND (started_at, id) < ("
                    "  SELECT started_at, id FROM invocations WHERE function = ?"
                    "  ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?"
                    ")",
                    [function, function, self.max_per_function - 1],
                )

    @translate_sqlite_errors
    def get(self, id: str) -> InvocationRecord | None:
        row = self._db.db.execute(f"SELECT {_COLUMNS} FROM invocations WHERE id = ?", [id]).fetchone()
        return _record(row) if row else None

    @translate_sqlite_errors
    def list(
        self, function: str | None = None, limit: int = 50, before: str | None = None
    ) -> builtins.list[InvocationRecord]:
        """Records newest first, of one function or all; `before` (an id) continues a previous page."""
        int_in_range("limit", limit, 1, MAX_LIST_LIMIT)
        where: builtins.list[str] = []
        params: builtins.list[object] = []
        if function is not None:
            where.append("function = ?")
            params.append(function)
        if before is not None:
            cursor = self._db.db.execute(
                "SELECT started_at FROM invocations WHERE id = ?", [before]
            ).fetchone()
            if cursor is None:
                raise NotFound(
                    f"invocation {before!r} (the 'before' cursor) does not exist; it may have aged out "
                    "of retention: list again from the newest"
                )
            where.append("(started_at, id) < (?, ?)")
            params += [cursor[0], before]
        sql = f"SELECT {_COLUMNS} FROM invocations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [_record(row) for row in self._db.db.execute(sql, params)]
