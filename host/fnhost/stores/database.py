"""The embedded SQLite database: one file in the data dir, WAL, one connection per thread.

Each store declares its own ordered list of migrations under a component name; `Database.migrate`
applies the ones not applied yet, so stores evolve independently and an existing file upgrades in
place.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


class Database:
    """A SQLite file shared by every store of one host. Safe to use from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate_lock = threading.Lock()
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (autocommit off; use `transaction()` to write)."""
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection; rolls back on error. Re-entrant."""
        db = self.db
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield db
            finally:
                self._local.depth = depth
            return
        db.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")
        finally:
            self._local.depth = 0

    def migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        """Apply `migrations[current_version:]` for `component`, each in its own transaction."""
        with self._migrate_lock:
            for index, step in enumerate(migrations):
                with self.transaction() as db:
                    row = db.execute(
                        "SELECT version FROM schema_versions WHERE component = ?", [component]
                    ).fetchone()
                    current = row[0] if row else 0
                    if index < current:
                        continue
                    step(db)
                    db.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        [component, index + 1],
                    )

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
