"""Cluster-wide concurrency: `limits.cluster_max_concurrency` slots per function, shared by every node.

A slot is a row (function, slot number) with a lease: taking one is a single statement that claims
the lowest free or expired slot within the limit (PostgreSQL: skipping rows another node is
claiming), giving it back is another. So a function with the limit pays two database round trips
per invocation and a function without it pays none; a node that dies holding slots loses them when
their leases (the function's timeout plus a margin) run out. Lowering the limit leaves the extra
rows unused; raising it adds rows on the first miss.
"""

from __future__ import annotations

from ._common import SQLiteStore, new_sortable_id, sql_migration, translate_database_errors
from .database import AnyDatabase, executemany

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE concurrency_slots ("
        " function TEXT NOT NULL,"
        " slot INTEGER NOT NULL,"
        " holder TEXT,"
        " expires_at REAL NOT NULL,"
        " PRIMARY KEY (function, slot)"
        ")",
    ),
]


class ConcurrencyStore(SQLiteStore):
    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "concurrency", MIGRATIONS)

    @translate_database_errors
    def acquire(self, function: str, limit: int, lease_s: float) -> tuple[int, str] | None:
        """A slot of `function` (its number and this holder's receipt), or None: all `limit` are in use."""
        for attempt in range(2):
            slot = self._claim(function, limit, lease_s)
            if slot is not None or attempt:
                return slot
            self._add_slots(function, limit)  # the first use, or the limit was raised
        return None

    def _claim(self, function: str, limit: int, lease_s: float) -> tuple[int, str] | None:
        dialect = self._db.dialect
        holder = new_sortable_id()
        row = self._db.db.execute(
            f"UPDATE concurrency_slots SET holder = ?, expires_at = {dialect.now} + ?"
            " WHERE function = ? AND slot = ("
            "  SELECT slot FROM concurrency_slots"
            f"  WHERE function = ? AND slot <= ? AND expires_at <= {dialect.now}"
            f"  ORDER BY slot LIMIT 1{dialect.skip_locked}"
            ") RETURNING slot",
            [holder, lease_s, function, function, limit],
        ).fetchone()
        return None if row is None else (int(row[0]), holder)

    def _add_slots(self, function: str, limit: int) -> None:
        with self._db.transaction() as db:  # one batch (the driver pipelines it), not a round trip per slot
            executemany(
                db,
                "INSERT INTO concurrency_slots (function, slot, holder, expires_at) VALUES (?, ?, NULL, 0)"
                " ON CONFLICT (function, slot) DO NOTHING",
                [(function, slot) for slot in range(1, limit + 1)],
            )

    @translate_database_errors
    def release(self, function: str, slot: tuple[int, str]) -> None:
        """Give a slot back (a no-op if its lease ran out and another invocation holds it now)."""
        number, holder = slot
        self._db.db.execute(
            "UPDATE concurrency_slots SET holder = NULL, expires_at = 0 WHERE function = ? AND slot = ? AND holder = ?",
            [function, number, holder],
        )

    @translate_database_errors
    def in_use(self, function: str) -> int:
        row = self._db.db.execute(
            f"SELECT count(*) FROM concurrency_slots WHERE function = ? AND expires_at > {self._db.dialect.now}",
            [function],
        ).fetchone()
        return int(row[0])
