"""The audit log's storage, on either backend: an append-only, hash-chained record of control-plane actions.

Each row stores `prev_hash` (the previous row's `hash`; 64 zeros for the first row) and

    hash = sha256(prev_hash + canonical JSON of {id, time, actor, action, target, outcome,
                                                 request_id, detail})

where canonical JSON is sorted keys, no spaces, ASCII only, and `time` is the entry's time (the
database's clock, stored as REAL epoch seconds at whole microseconds) written as ISO-8601 UTC with
microseconds (`2026-12-02T16:23:22.123456Z`): chains from before REAL timestamps verify unchanged.
Ids are 1, 2, 3... with no gaps, and the highest id ever written is kept in `audit_head`. `verify`
therefore finds an edited row (its hash no longer matches), a deleted row (a gap, or a broken link),
reordered rows (broken links) and rows deleted from the end (fewer rows than were written).

Appends run in one transaction that locks `audit_head` (SQLite: the writer lock; PostgreSQL: its row,
`FOR UPDATE`), reads the last hash and inserts the new row, so concurrent writers — threads,
processes, nodes on one PostgreSQL — queue up and never fork the chain.

What the chain cannot stop: someone who can write the database file can rewrite the whole chain
consistently. Record `head()` somewhere they cannot write (a log shipper, a ticket) to detect that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ._common import SQLiteStore, rebuild_table, sql_migration, translate_database_errors
from .database import SQLITE, AnyDatabase

GENESIS_HASH = "0" * 64
MAX_PAGE = 1000
_COLUMNS = "id, time, actor_key_id, action, target, outcome, request_id, detail, prev_hash, hash"


_create_audit_log = sql_migration(
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        actor_key_id TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        request_id TEXT,
        detail TEXT,                   -- canonical JSON object, or NULL
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )"""
)


def _add_head(db: Any) -> None:
    """The highest id ever written, in a row of its own: the lock appends take turns on, on both backends.
    A SQLite log from before it takes `sqlite_sequence`'s high-water mark, so deletions from its end still show."""
    dialect = getattr(db, "dialect", SQLITE)
    db.execute(dialect.ddl("CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), written INTEGER NOT NULL)"))
    if dialect is SQLITE:
        seeded = "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'), 0)"
    else:
        seeded = "coalesce((SELECT max(id) FROM audit_log), 0)"
    db.execute(f"INSERT INTO audit_head (id, written) SELECT 1, {seeded}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _real_time(db: Any) -> None:
    """`time` from ISO-8601 text to REAL epoch seconds; hashes are untouched (they hash the ISO form)."""

    def convert(row: tuple[Any, ...]) -> list[Any]:
        try:
            micros = (datetime.fromisoformat(row[1]) - _EPOCH) // _MICROSECOND
        except (TypeError, ValueError):  # not a time fnhost wrote: keep the row, verify reports it as edited
            micros = 0
        return [row[0], micros / 1_000_000, *row[2:]]

    rebuild_table(
        db,
        "audit_log",
        """id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        actor_key_id TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        request_id TEXT,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL""",
        _COLUMNS,
        convert,
    )


MIGRATIONS = [_create_audit_log, _add_head, _real_time]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: float
    """Epoch seconds, at whole microseconds (the database's clock)."""
    actor_key_id: str | None
    action: str
    target: str
    outcome: str
    request_id: str | None
    detail: dict[str, Any] | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # rows whose links and hashes were checked, up to the first broken one
    first_broken_id: int | None
    reason: str | None


class AuditLog(SQLiteStore):
    """The audit chain in the host database (what the API, CLI and `fnhost db copy` append to and verify)."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "audit", MIGRATIONS)

    @translate_database_errors
    def record(
        self,
        action: str,
        target: str,
        outcome: str,
        actor_key_id: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry. `detail` must be JSON-serializable (finite numbers only)."""
        for field, value in (("action", action), ("target", target), ("outcome", outcome)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{field}: must be a non-empty string, got {value!r}")
        if detail is not None and not isinstance(detail, dict):
            raise ValueError(f"detail: must be a dict or None, got {type(detail).__name__}")
        detail_json = None if detail is None else _canonical_json(detail)
        with self._db.transaction() as db:
            written, now = db.execute(
                f"SELECT written, {self._db.dialect.now} FROM audit_head WHERE id = 1{self._db.dialect.for_update}"
            ).fetchone()
            last = db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
            prev_hash = last[0] if last else GENESIS_HASH
            entry_id = int(written) + 1
            time = round(now * 1_000_000) / 1_000_000  # whole microseconds, as the hash writes it
            row = (entry_id, time, actor_key_id, action, target, outcome, request_id, detail_json)
            entry_hash = _entry_hash(prev_hash, *row)
            db.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*row, prev_hash, entry_hash],
            )
            db.execute("UPDATE audit_head SET written = ? WHERE id = 1", [entry_id])
        return _entry((*row, prev_hash, entry_hash))

    @translate_database_errors
    def list(self, limit: int = 50, after_id: int | None = None) -> list[AuditEntry]:
        """Entries in id order, oldest first; pass the last id seen as `after_id` for the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: must be 1..{MAX_PAGE}, got {limit}")
        rows = self._db.db.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", [after_id or 0, limit]
        ).fetchall()
        return [_entry(row) for row in rows]

    @translate_database_errors
    def head(self) -> tuple[int, str] | None:
        """(id, hash) of the last entry — record it elsewhere to detect a rewritten chain."""
        row = self._db.db.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1])

    @translate_database_errors
    def verify(self) -> VerifyResult:
        """Walk the chain from the first entry; report the first broken link, if any."""
        db = self._db.db
        # Read the high-water mark first: rows appended meanwhile are above it and left out.
        written = _highest_id_written(db)
        checked = 0
        prev_hash = GENESIS_HASH
        for row in db.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE id <= ? ORDER BY id", [written]):
            expected_id = checked + 1
            entry_id = row[0]
            if entry_id != expected_id:
                return _broken(checked, entry_id, f"expected entry {expected_id} here: entries were deleted")
            if row[8] != prev_hash:
                return _broken(
                    checked,
                    entry_id,
                    "prev_hash does not match the previous entry's hash: entries were deleted, "
                    "inserted or reordered",
                )
            try:
                recomputed = _entry_hash(prev_hash, *row[:8])
            except ValueError:  # detail no longer parses as JSON
                recomputed = None
            if recomputed != row[9]:
                return _broken(checked, entry_id, "content does not match its hash: the entry was edited")
            prev_hash = row[9]
            checked += 1
        if checked != written:
            return _broken(
                checked,
                checked + 1,
                f"the log ends at entry {checked} but {written} were written: "
                "entries were deleted from the end",
            )
        return VerifyResult(ok=True, checked=checked, first_broken_id=None, reason=None)


def _highest_id_written(db: Any) -> int:
    row = db.execute("SELECT written FROM audit_head WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"detail: must be JSON-serializable with finite numbers: {e}") from None


def _entry_hash(
    prev_hash: str,
    entry_id: int,
    time: float,
    actor_key_id: str | None,
    action: str,
    target: str,
    outcome: str,
    request_id: str | None,
    detail_json: str | None,
) -> str:
    content = {
        "id": entry_id,
        "time": _iso(time),
        "actor": actor_key_id,
        "action": action,
        "target": target,
        "outcome": outcome,
        "request_id": request_id,
        "detail": None if detail_json is None else json.loads(detail_json),
    }
    return hashlib.sha256((prev_hash + _canonical_json(content)).encode("ascii")).hexdigest()


def _iso(time: float) -> str:
    """How the hash writes an entry's time: ISO-8601 UTC, microseconds, `Z`."""
    moment = _EPOCH + round(time * 1_000_000) * _MICROSECOND
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    entry_id, time, actor_key_id, action, target, outcome, request_id, detail_json, prev_hash, hash_ = row
    return AuditEntry(
        id=entry_id,
        time=float(time),
        actor_key_id=actor_key_id,
        action=action,
        target=target,
        outcome=outcome,
        request_id=request_id,
        detail=None if detail_json is None else json.loads(detail_json),
        prev_hash=prev_hash,
        hash=hash_,
    )


def _broken(checked: int, entry_id: int, reason: str) -> VerifyResult:
    return VerifyResult(
        ok=False, checked=checked, first_broken_id=entry_id, reason=f"entry {entry_id}: {reason}"
    )
