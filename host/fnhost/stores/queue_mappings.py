"""Queue mappings created through the API (`QueueTriggers.create`); manifest mappings are not stored here."""

from __future__ import annotations

import json
from typing import Any

from ._common import SQLiteStore, sql_migration, translate_database_errors
from .database import AnyDatabase

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE queue_mappings ("
        " function TEXT NOT NULL,"
        " queue TEXT NOT NULL,"
        " config TEXT NOT NULL,"  # the [[triggers.queue]] table, as JSON
        " created_at REAL NOT NULL,"
        " PRIMARY KEY (function, queue)"
        ")",
    ),
]


class QueueMappingStore(SQLiteStore):
    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "queue_mappings", MIGRATIONS)

    @translate_database_errors
    def list(self) -> list[tuple[str, dict[str, Any]]]:
        """(function, config) of every stored mapping, by function and queue."""
        rows = self._db.db.execute("SELECT function, config FROM queue_mappings ORDER BY function, queue")
        return [(row[0], json.loads(row[1])) for row in rows]

    @translate_database_errors
    def add(self, function: str, queue: str, config: dict[str, Any]) -> bool:
        """Store a mapping; False if `queue` is already mapped to `function` (two racing adds: one wins)."""
        with self._db.transaction() as db:
            row = db.execute(
                "INSERT INTO queue_mappings (function, queue, config, created_at)"
                f" VALUES (?, ?, ?, {self._db.dialect.now}) ON CONFLICT (function, queue) DO NOTHING RETURNING queue",
                [function, queue, json.dumps(config)],
            ).fetchone()
        return row is not None

    @translate_database_errors
    def remove(self, function: str, queue: str) -> bool:
        with self._db.transaction() as db:
            return bool(
                db.execute("DELETE FROM queue_mappings WHERE function = ? AND queue = ?", [function, queue]).rowcount
            )
