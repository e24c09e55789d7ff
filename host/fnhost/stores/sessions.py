"""Console sign-in sessions on either backend: an opaque id in the browser, only its SHA-256 here.

A session names the API key it was opened with and nothing the key allows: every request reads the
key again (`ApiKeys.principal`), so a revoked key's sessions stop working at once, and a change of
its rights applies at once too. Expiry is absolute (`ttl_s` from sign-in) and checked against the
database clock, so every node of a cluster agrees on it. Expired rows are deleted as new sessions
are opened.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from ._common import SQLiteStore, sql_migration, translate_database_errors
from .database import AnyDatabase

DEFAULT_TTL_S = 8 * 3600
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
"""What `create` hands out (256 random bits, URL-safe base64); anything else is no session."""

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE console_sessions ("
        " id_sha256 TEXT PRIMARY KEY,"
        " key_id TEXT NOT NULL,"
        " created_at REAL NOT NULL,"
        " expires_at REAL NOT NULL"
        ")",
        "CREATE INDEX console_sessions_key ON console_sessions (key_id)",
        "CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)",
    ),
]


@dataclass(frozen=True)
class Session:
    key_id: str
    created_at: float
    """Unix seconds (the database clock)."""
    expires_at: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore(SQLiteStore):
    """Sessions of the web console. A 256-bit random id needs no slow hash: SHA-256 is enough to
    make a leaked table useless for signing in."""

    def __init__(self, db: AnyDatabase, ttl_s: float = DEFAULT_TTL_S) -> None:
        super().__init__(db, "console_sessions", MIGRATIONS)
        if not 60 <= ttl_s <= 30 * 86400:
            raise ValueError(f"session lifetime must be 60 s..30 days, got {ttl_s} s")
        self.ttl_s = float(ttl_s)

    @translate_database_errors
    def create(self, key_id: str) -> str:
        """Open a session for API key `key_id`; return its id (shown to the browser once, never stored)."""
        session_id = secrets.token_urlsafe(32)
        now = self._db.dialect.now
        with self._db.transaction() as db:
            db.execute(f"DELETE FROM console_sessions WHERE expires_at <= {now}")
            db.execute(
                "INSERT INTO console_sessions (id_sha256, key_id, created_at, expires_at)"
                f" VALUES (?, ?, {now}, {now} + ?)",
                [_hash(session_id), key_id, self.ttl_s],
            )
        return session_id

    @translate_database_errors
    def get(self, session_id: str | None) -> Session | None:
        """The live session `session_id` names, or None (unknown, malformed, signed out or expired)."""
        if session_id is None or not SESSION_ID_RE.fullmatch(session_id):
            return None
        row = self._db.db.execute(
            "SELECT key_id, created_at, expires_at FROM console_sessions"
            f" WHERE id_sha256 = ? AND expires_at > {self._db.dialect.now}",
            [_hash(session_id)],
        ).fetchone()
        return None if row is None else Session(row[0], float(row[1]), float(row[2]))

    @translate_database_errors
    def delete(self, session_id: str) -> bool:
        """Sign out: forget the session; False if there was none."""
        if not SESSION_ID_RE.fullmatch(session_id):
            return False
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM console_sessions WHERE id_sha256 = ?", [_hash(session_id)])
            return bool(cursor.rowcount > 0)

    @translate_database_errors
    def delete_for_key(self, key_id: str) -> int:
        """Forget every session of API key `key_id` (it was revoked); how many there were."""
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM console_sessions WHERE key_id = ?", [key_id]).rowcount)
