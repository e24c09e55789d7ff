"""The audit log: an append-only, hash-chained record of control-plane actions.

Each row stores `prev_hash` (the previous row's `hash`; 64 zeros for the first row) and

    hash = sha256(prev_hash + canonical JSON of {id, time, actor, action, target, outcome,
                                                 request_id, detail})

where canonical JSON is sorted keys, no spaces, ASCII only. Ids are 1, 2, 3... with no gaps, and the
highest id ever written is kept in `audit_head`. `verify` therefore finds an edited row (its
hash no longer matches), a deleted row (a gap, or a broken link), reordered rows (broken links) and
rows deleted from the end (fewer rows than were written).

Appends run in one transaction that locks `audit_head`, reads the last hash and inserts the new
row, so concurrent writers — threads, processes, nodes on one PostgreSQL — queue up and never fork
the chain.

What the chain cannot stop: someone who can write the database file can rewrite the whole chain
consistently. Record `head()` somewhere they cannot write (a log shipper, a ticket) to detect that.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any

from ..stores._common import sql_migration, translate_sqlite_errors
from ..stores.database import SQLITE, AnyDatabase

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


MIGRATIONS = [_create_audit_log, _add_head]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: str
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


class AuditLog:
    def __init__(self, db: AnyDatabase) -> None:
        self._db = db
        db.migrate("audit", MIGRATIONS)

    @translate_sqlite_errors
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
            (written,) = db.execute(
                f"SELECT written FROM audit_head WHERE id = 1{self._db.dialect.for_update}"
            ).fetchone()
            last = db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
            prev_hash = last[0] if last else GENESIS_HASH
            entry_id = int(written) + 1
            time = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            row = (entry_id, time, actor_key_id, action, target, outcome, request_id, detail_json)
            entry_hash = _entry_hash(prev_hash, *row)
            db.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*row, prev_hash, entry_hash],
            )
            db.execute("UPDATE audit_head SET written = ? WHERE id = 1", [entry_id])
        return _entry((*row, prev_hash, entry_hash))

    @translate_sqlite_errors
    def list(self, limit: int = 50, after_id: int | None = None) -> list[AuditEntry]:
        """Entries in id order, oldest first; pass the last id seen as `after_id` for the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: must be 1..{MAX_PAGE}, got {limit}")
        rows = self._db.db.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", [after_id or 0, limit]
        ).fetchall()
        return [_entry(row) for row in rows]

    @translate_sqlite_errors
    def head(self) -> tuple[int, str] | None:
        """(id, hash) of the last entry — record it elsewhere to detect a rewritten chain."""
        row = self._db.db.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1])

    @translate_sqlite_errors
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
    time: str,
    actor_key_id: str | None,
    action: str,
    target: str,
    outcome: str,
    request_id: str | None,
    detail_json: str | None,
) -> str:
    content = {
        "id": entry_id,
        "time": time,
        "actor": actor_key_id,
        "action": action,
        "target": target,
        "outcome": outcome,
        "request_id": request_id,
        "detail": None if detail_json is None else json.loads(detail_json),
    }
    return hashlib.sha256((prev_hash + _canonical_json(content)).encode("ascii")).hexdigest()


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    entry_id, time, actor_key_id, action, target, outcome, request_id, detail_json, prev_hash, hash_ = row
    return AuditEntry(
        id=entry_id,
        time=time,
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


@dataclass
class _Source:
    started: float  # wall-clock time of its first failure in this interval
    repeats: int = 0  # failures after the first, not yet summarized
    last: float = 0.0
    last_request_id: str | None = None  # the summary row carries the last counted request's id
    reasons: dict[str, int] = dataclass_field(default_factory=dict)
    paths: set[str] = dataclass_field(default_factory=set)


class FailedAuthentications:
    """Failed authentications (401s), aggregated per source per interval instead of one row each.

    A keyless client can fail thousands of times a second, and each audit row is a write
    transaction: one row per failure is a disk-filling attack. Here the first failure of a source
    (its IP address) in each `interval_s` is recorded in full (`auth.denied`, as before); the ones
    after it are only counted, and one `auth.denied.summary` row per source says how many there
    were, when, why (counts per reason) and on which paths (the first `MAX_PATHS`). Summaries are
    written when the interval has passed (at the next failure, or at `flush`). At most
    `max_sources` distinct sources are tracked per interval; more are counted as one source
    `(other sources)`, so memory and rows stay bounded whatever the attacker does. An IPv6 source
    is its /64 (one host holds a whole /64 to pick addresses from).
    """

    OTHER = "(other sources)"
    MAX_PATHS = 10

    def __init__(
        self,
        log: AuditLog,
        interval_s: float = 60.0,
        max_sources: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self.max_sources = max_sources
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._sources: dict[str, _Source] = {}

    def failed(self, source: str, target: str, reason: str, request_id: str | None, detail: dict[str, Any]) -> None:
        """Count one failure; record it in full if it is the source's first in this interval."""
        now = self.clock()
        with self._lock:
            ended = self._take_ended(now)
            if source not in self._sources and len(self._sources) >= self.max_sources:
                source = self.OTHER
            entry = self._sources.get(source)
            first = entry is None
            if entry is None:
                entry = self._sources[source] = _Source(started=now)
            else:
                entry.repeats += 1
                entry.reasons[reason] = entry.reasons.get(reason, 0) + 1
                if len(entry.paths) < self.MAX_PATHS:
                    entry.paths.add(target)
            entry.last = now
            entry.last_request_id = request_id
        self._write(ended)
        if first:
            self.log.record(
                "auth.denied", target, reason, None, request_id, {**detail, "source": source, "aggregated_after": 1}
            )

    @staticmethod
    def source_of(address: str) -> str:
        """The source a client address counts under: the address, or an IPv6 address's /64."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address[:100]
        return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)

    def flush(self, *, end_interval: bool = False) -> None:
        """Write the summaries of an interval that has passed (or of the current one, ending it)."""
        with self._lock:
            ended = self._take_ended(self.clock(), force=end_interval)
        self._write(ended)

    def _take_ended(self, now: float, force: bool = False) -> dict[str, _Source]:
        if not force and now - self._window_start < self.interval_s:
            return {}
        ended, self._sources, self._window_start = self._sources, {}, now
        return ended

    def _write(self, ended: dict[str, _Source]) -> None:
        for source, entry in ended.items():
            if entry.repeats:
                self.log.record(
                    "auth.denied.summary",
                    source,
                    "unauthorized",
                    request_id=entry.last_request_id,
                    detail={
                        "count": entry.repeats,
                        "first_at": entry.started,
                        "last_at": entry.last,
                        "reasons": entry.reasons,
                        "paths": sorted(entry.paths),
                    },
                )
