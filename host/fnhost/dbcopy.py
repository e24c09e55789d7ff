"""`fnhost db copy`: move an embedded SQLite data dir into a shared PostgreSQL, whole and in one transaction.

Every table is copied row for row (functions, versions, aliases, kv, queues with their in-flight
state and receive counts, sealed secrets, API keys, shares, the audit chain with its ids and hashes,
invocation records, async invokes, schedule state, queue mappings), and every deployed binary moves
from `wasm/` into the database. The target must be empty: a copy never merges. Both schemas are
first migrated to this code's version, so a data dir from an older fnhost copies as well. The copy
checks itself before it commits: the same row count per table, and the audit chain verifies.

Secrets stay sealed under the data dir's master key, which becomes the database's: run every node
with that key (`FNHOST_MASTER_KEY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Conflict, NotFound
from .stores import InvocationStore, Registry, SQLiteKVStore, SQLiteQueueStore, SQLiteSecretStore, load_master_key
from .stores.api_keys import ApiKeyStore
from .stores.async_invocations import AsyncInvocationStore
from .stores.audit import AuditLog
from .stores.concurrency import ConcurrencyStore
from .stores.database import AnyDatabase, Database, PostgresDatabase, executemany
from .stores.queue_mappings import QueueMappingStore
from .stores.schedules import ScheduleStateStore
from .stores.shares import ShareStore
from .stores.wasm import DatabaseWasmStore, FileWasmStore

BATCH = 500
# Written by the stores themselves on the target: the migration bookkeeping and the master-key check.
# Console sessions stay behind: a browser signs in again on the new database.
_NOT_COPIED = {"schema_versions", "master_key_check", "wasm_blobs", "console_sessions"}


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]
    """Rows copied per table."""
    binaries: int
    audit_entries: int


def migrate_every_store(db: AnyDatabase, master_key: bytes) -> None:
    """Bring every table of fnhost to this code's schema (what a host, its triggers and its API create)."""
    queues = SQLiteQueueStore(db)
    for make in (Registry, SQLiteKVStore, InvocationStore, ShareStore, ApiKeyStore, AuditLog, ScheduleStateStore,
                 QueueMappingStore, ConcurrencyStore):  # fmt: skip
        make(db)
    SQLiteSecretStore(db, master_key)
    AsyncInvocationStore(db, queues)
    if isinstance(db, PostgresDatabase):
        DatabaseWasmStore(db)


def copy_data_dir(data_dir: str | Path, target_url: str, *, master_key: bytes | None = None) -> CopyReport:
    """Copy the SQLite data dir `data_dir` into the empty PostgreSQL at `target_url`; raises before any
    change on a bad source or a non-empty target, and rolls everything back if a check fails."""
    data_dir = Path(data_dir)
    if not (data_dir / "fnhost.db").is_file():
        raise NotFound(f"{data_dir} holds no fnhost.db: give the data dir of an fnhost server (--data-dir)")
    key = master_key or load_master_key(data_dir)
    source = Database(data_dir / "fnhost.db")
    target = PostgresDatabase(target_url)
    try:
        migrate_every_store(source, key)
        migrate_every_store(target, key)  # refuses another master key than the target's, if it has one
        tables = _tables(source)
        with target.transaction() as tx:
            for table in ("functions", "api_keys", "audit_log", "kv_entries", "queue_messages", "secrets"):
                if tx.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    raise Conflict(
                        f"the target database already holds fnhost data (table {table} is not empty): "
                        "copy into a new, empty database"
                    )
            tx.execute("DELETE FROM audit_head")  # seeded by its migration; the source's row says what was written
            rows = {table: _copy_table(source, tx, table) for table in tables}
            binaries = _copy_binaries(data_dir / "wasm", source, target)
            for table, count in rows.items():
                (copied,) = tx.execute(f"SELECT count(*) FROM {table}").fetchone()
                if int(copied) != count:
                    raise RuntimeError(f"copy check failed: {table}: {copied} rows copied of {count}")
            verified = AuditLog(target).verify()
            if not verified.ok:
                raise RuntimeError(f"copy check failed: the copied audit chain does not verify ({verified.reason})")
        return CopyReport(rows=rows, binaries=binaries, audit_entries=verified.checked)
    finally:
        source.close()
        target.close()


def _tables(source: Database) -> list[str]:
    names = source.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    tables = [row[0] for row in names if row[0] not in _NOT_COPIED]
    # Parents before children (versions and aliases reference functions, aliases reference versions).
    order = {"functions": 0, "versions": 1, "aliases": 2}
    return sorted(tables, key=lambda t: (order.get(t, 3), t))


def _copy_table(source: Database, tx: Any, table: str) -> int:
    columns = [row[1] for row in source.db.execute(f"PRAGMA table_info({table})").fetchall()]
    known = tx.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    if known is None:
        raise RuntimeError(f"copy: table {table} of the data dir has no counterpart in the target (a store "
                           "missing from dbcopy.migrate_every_store)")  # fmt: skip
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    cursor = source.db.execute(f"SELECT {names} FROM {table}")
    count = 0
    while batch := cursor.fetchmany(BATCH):
        executemany(tx, insert, [[bytes(v) if isinstance(v, memoryview) else v for v in row] for row in batch])
        count += len(batch)
    return count


def _copy_binaries(wasm_dir: Path, source: Database, target: PostgresDatabase) -> int:
    """Every binary a version refers to, checked against its sha256 on the way (inside the open transaction)."""
    files, rows = FileWasmStore(wasm_dir), DatabaseWasmStore(target)
    needed = sorted({row[0] for row in source.db.execute("SELECT DISTINCT sha256 FROM versions").fetchall()})
    for sha256 in needed:
        data = files.get(sha256)
        if data is None:
            raise NotFound(f"{wasm_dir}/{sha256}.wasm is missing: a version refers to it; the data dir is incomplete")
        rows.put(sha256, data)
    return len(needed)
