"""Records of finished invocations, newest first, with bounded retention in rows and in bytes.

Every bound is in bytes as well as rows, so neither a chatty function nor many of them can grow
the database, or a listing, without limit:

- one record stores at most `max_record_bytes` of logs and of error text (the head, then a
  marker saying how much was not kept; the invocation's own limit, `limits.max_log_bytes`, can be
  64 MiB);
- one function keeps at most `max_per_function` records and `max_bytes_per_function` bytes;
- all functions together keep at most `max_bytes` (the oldest records go first, down to 90 %);
- a listing returns at most `max_page_bytes` (and `next_before` says where to go on).

Retention per function is exact and cheap: after each insert, the rows of that function older
than its `max_per_function`-th newest, or past its byte budget, are deleted; the lookups walk the
`(function, started_at, id)` index. The total is tracked in memory (recomputed whenever it may
exceed `max_bytes`), so the whole table is only summed when it may be over.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Any

from ..errors import NotFound
from ._common import SQLiteStore, int_in_range, sql_migration, translate_database_errors
from .database import AnyDatabase, executemany

MAX_LIST_LIMIT = 1000
"""The most records one `list` call returns."""
MAX_RECORD_BYTES = 256 * 1024
MAX_BYTES_PER_FUNCTION = 64 * 1024 * 1024
MAX_BYTES = 1024 * 1024 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024
_SIZE = "length(CAST(logs AS BLOB)) + coalesce(length(CAST(error AS BLOB)), 0) + length(CAST(report AS BLOB))"

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
    sql_migration(
        "ALTER TABLE invocations ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        f"UPDATE invocations SET size = {_SIZE}",
    ),
    # when each record was written, on the database's clock: what `recorded_since` (logs --follow) reads
    sql_migration(
        "ALTER TABLE invocations ADD COLUMN recorded_at REAL NOT NULL DEFAULT 0",
        "UPDATE invocations SET recorded_at = started_at + duration_ms / 1000.0",
        "CREATE INDEX invocations_by_recording ON invocations (function, recorded_at)",
    ),
    sql_migration("ALTER TABLE invocations ADD COLUMN outbound TEXT NOT NULL DEFAULT '[]'"),
    sql_migration("ALTER TABLE invocations ADD COLUMN chain_depth INTEGER NOT NULL DEFAULT 0"),
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
    outbound: str = "[]"
    """Its outbound HTTP requests, a JSON list of `fnhost.egress.Exchange` (method, origin, status, bytes, ms)."""
    chain_depth: int = 0
    """Invocations that led to it (`fnhost.chains`): 0 when started from outside."""


_COLUMNS = ", ".join(f.name for f in fields(InvocationRecord))
_ROW = attrgetter(*(f.name for f in fields(InvocationRecord)))  # a record's values in column order
_UPSERT = (  # {now}: the database's clock (`Dialect.now`), so records of every node share one order
    f"INSERT INTO invocations ({_COLUMNS}, size, recorded_at) "
    f"VALUES ({', '.join('?' * (len(fields(InvocationRecord)) + 1))}, {{now}}) "
    "ON CONFLICT (id) DO UPDATE SET size = excluded.size, recorded_at = excluded.recorded_at, "
    + ", ".join(f"{f.name} = excluded.{f.name}" for f in fields(InvocationRecord) if f.name != "id")
)


def _record(row: Any) -> InvocationRecord:
    return InvocationRecord(*row)


def bounded_text(lines: Sequence[str], max_bytes: int) -> str:
    """`lines` joined by newlines, at most `max_bytes` of UTF-8 (about), with a marker if cut."""
    kept: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        size += len(line.encode("utf-8", "replace")) + 1
        if size > max_bytes:
            left = sum(len(x) + 1 for x in lines[i:])
            kept.append(f"[fnhost] {left} more characters of logs not stored (at most {max_bytes} bytes per record)")
            break
        kept.append(line)
    return "\n".join(kept)


def _size(rec: InvocationRecord) -> int:
    return len(rec.logs.encode()) + len((rec.error or "").encode()) + len(rec.report.encode()) + len(rec.outbound)


@dataclass(frozen=True)
class Page:
    """One page of a listing: the records, and the id to pass as `before` for the next (None: no more)."""

    records: list[InvocationRecord]
    next_before: str | None


class InvocationStore(SQLiteStore):
    """Invocation records over the host database, at most `max_per_function` kept per function."""

    def __init__(
        self,
        db: AnyDatabase,
        max_per_function: int = 1000,
        *,
        max_record_bytes: int = MAX_RECORD_BYTES,
        max_bytes_per_function: int = MAX_BYTES_PER_FUNCTION,
        max_bytes: int = MAX_BYTES,
        max_page_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        super().__init__(db, "invocations", MIGRATIONS)
        self.max_per_function = int_in_range("max_per_function", max_per_function, 1, 10**9)
        self.max_record_bytes = int_in_range("max_record_bytes", max_record_bytes, 1024, 1 << 30)
        self.max_bytes_per_function = int_in_range(
            "max_bytes_per_function", max_bytes_per_function, 4 * self.max_record_bytes, 1 << 40
        )
        self.max_bytes = int_in_range("max_bytes", max_bytes, self.max_bytes_per_function, 1 << 42)
        self.max_page_bytes = int_in_range("max_page_bytes", max_page_bytes, 1, 1 << 40)
        self._total: int | None = None  # bytes stored, as of the last count, plus what was added since
        self._upsert = _UPSERT.format(now=self._db.dialect.now)

    def record(self, rec: InvocationRecord) -> None:
        """Store `rec` (replacing a record with the same id) and apply retention to its function."""
        self.record_many([rec])

    def _bounded(self, rec: InvocationRecord) -> InvocationRecord:
        if len(rec.logs) * 4 > self.max_record_bytes or len(rec.error or "") * 4 > self.max_record_bytes:
            logs = bounded_text(rec.logs.split("\n"), self.max_record_bytes)
            error = rec.error if rec.error is None else bounded_text([rec.error], self.max_record_bytes)
            rec = replace(rec, logs=logs, error=error)
        return rec

    @translate_database_errors
    def record_many(self, recs: Sequence[InvocationRecord]) -> None:
        """Store several records in one transaction, then apply retention once per function."""
        recs = [self._bounded(rec) for rec in recs]
        sizes = [_size(rec) for rec in recs]
        with self._db.transaction() as db:
            # not dataclasses.astuple: it deep-copies every value, more than half of what a batch cost
            executemany(db, self._upsert, [(*_ROW(rec), size) for rec, size in zip(recs, sizes, strict=True)])
            for function in {rec.function for rec in recs}:
                db.execute(
                    "DELETE FROM invocations WHERE function = ? AND (started_at, id) < ("
                    "  SELECT started_at, id FROM invocations WHERE function = ?"
                    "  ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?"
                    ")",
                    [function, function, self.max_per_function - 1],
                )
                db.execute(
                    "DELETE FROM invocations WHERE function = ? AND (started_at, id) <= ("
                    "  SELECT started_at, id FROM ("
                    "    SELECT started_at, id, sum(size) OVER (ORDER BY started_at DESC, id DESC) AS total"
                    "    FROM invocations WHERE function = ?"
                    "  ) AS running WHERE total > ? ORDER BY started_at DESC, id DESC LIMIT 1"
                    ")",
                    [function, function, self.max_bytes_per_function],
                )
            if self._total is not None:
                self._total += sum(sizes)
            if self._total is None or self._total > self.max_bytes:
                self._total = self._apply_total_budget(db)

    def _apply_total_budget(self, db: Any) -> int:
        """Delete the oldest records of any function until at most 90 % of `max_bytes` remain; the bytes left."""
        total = int(db.execute("SELECT coalesce(sum(size), 0) FROM invocations").fetchone()[0])
        if total <= self.max_bytes:
            return total
        db.execute(
            "DELETE FROM invocations WHERE (started_at, id) <= ("
            "  SELECT started_at, id FROM ("
            "    SELECT started_at, id, sum(size) OVER (ORDER BY started_at DESC, id DESC) AS total FROM invocations"
            "  ) AS running WHERE total > ? ORDER BY started_at DESC, id DESC LIMIT 1"
            ")",
            [self.max_bytes * 9 // 10],
        )
        return int(db.execute("SELECT coalesce(sum(size), 0) FROM invocations").fetchone()[0])

    @translate_database_errors
    def get(self, id: str) -> InvocationRecord | None:
        row = self._db.db.execute(f"SELECT {_COLUMNS} FROM invocations WHERE id = ?", [id]).fetchone()
        return _record(row) if row else None

    def list(
        self, function: str | None = None, limit: int = 50, before: str | None = None
    ) -> builtins.list[InvocationRecord]:
        """Records newest first, of one function or all; `before` (an id) continues a previous page."""
        return self.page(function, limit, before).records

    @translate_database_errors
    def page(
        self, function: str | None = None, limit: int = 50, before: str | None = None, outcome: str | None = None
    ) -> Page:
        """Like `list`, at most `limit` records and `max_page_bytes` (at least one record), with the
        cursor of the next page; with `outcome` (an `Outcome` value), only the records that ended so."""
        int_in_range("limit", limit, 1, MAX_LIST_LIMIT)
        where: builtins.list[str] = []
        params: builtins.list[object] = []
        if function is not None:
            where.append("function = ?")
            params.append(function)
        if outcome is not None:
            where.append("outcome = ?")
            params.append(outcome)
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
        sql = f"SELECT size, {_COLUMNS} FROM invocations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit + 1)
        records: builtins.list[InvocationRecord] = []
        size = 0
        for row in self._db.db.execute(sql, params):  # rows are read one at a time: a page holds no more
            size += row[0]
            if len(records) == limit or (records and size > self.max_page_bytes):
                return Page(records, records[-1].id)
            records.append(_record(row[1:]))
        return Page(records, None)

    @translate_database_errors
    def clock(self) -> float:
        """The database's clock now (seconds since the epoch): where a follower starts."""
        return float(self._db.db.execute(f"SELECT {self._db.dialect.now}").fetchone()[0])

    @translate_database_errors
    def recorded_at(self, id: str, function: str) -> float | None:
        """When `function`'s record `id` was written (database clock), or None if it has none such."""
        row = self._db.db.execute(
            "SELECT recorded_at FROM invocations WHERE id = ? AND function = ?", [id, function]
        ).fetchone()
        return float(row[0]) if row else None

    @translate_database_errors
    def recorded_since(
        self, function: str, after: float, limit: int = 100
    ) -> builtins.list[tuple[float, InvocationRecord]]:
        """Records of `function` written after `after` (database clock), oldest first, each with its
        time of writing. A record's transaction may commit a moment after that time, so a follower
        reads again from a little before the newest time it has seen and skips the ids it has."""
        int_in_range("limit", limit, 1, MAX_LIST_LIMIT)
        rows = self._db.db.execute(
            f"SELECT recorded_at, {_COLUMNS} FROM invocations WHERE function = ? AND recorded_at > ? "
            "ORDER BY recorded_at, id LIMIT ?",
            [function, after, limit],
        )
        return [(float(row[0]), _record(row[1:])) for row in rows]
