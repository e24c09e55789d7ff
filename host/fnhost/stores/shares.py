"""Share records, on either backend: the one way a resource crosses a namespace.

An admin of the namespace that owns a kv bucket, secret or queue shares that one resource with one
other namespace; functions there may then name it `owner/name` in their grants and triggers, and
keys there may grant it (an admin, or a key whose `may_grant` covers `kind:owner/name`). A share is
checked at deploy and again at every call, so revoking it cuts off versions deployed while it held.
Creating and revoking shares is audited by the API (`share.create`, `share.revoke`); which kinds of
resource may be shared, and with whom, is `fnhost.control.shares`. Times are the database's clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import NotFound
from ..namespaces import check_namespace, qualify
from ._common import SQLiteStore, new_sortable_id, require_resource_name, sql_migration, translate_database_errors
from .database import AnyDatabase
from .errors import InvalidArgument

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE shares ("
        " id TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL,"  # the namespace the resource belongs to
        " kind TEXT NOT NULL,"
        " name TEXT NOT NULL,"  # the resource's plain name in `owner`
        " grantee TEXT NOT NULL,"  # the namespace it is shared with
        " created_by TEXT,"
        " created_at REAL NOT NULL,"
        " revoked_by TEXT,"
        " revoked_at REAL"
        ")",
        "CREATE INDEX shares_active ON shares (kind, owner, name, grantee) WHERE revoked_at IS NULL",
    ),
]
_COLUMNS = "id, owner, kind, name, grantee, created_by, created_at, revoked_by, revoked_at"


@dataclass(frozen=True)
class Share:
    id: str
    owner: str
    kind: str
    name: str
    grantee: str
    created_by: str | None
    created_at: float
    revoked_by: str | None
    revoked_at: float | None

    @property
    def reference(self) -> str:
        """How functions of `grantee` name it in their manifests."""
        return f"{self.owner}/{self.name}"


class ShareStore(SQLiteStore):
    ACTIVE_TTL_S = 1.0
    """How long the set of active shares is trusted without asking SQLite again (calls check it).
    Changes through this object apply at once; another process's within this."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "shares", MIGRATIONS)
        self._lock = threading.Lock()
        self._active: tuple[float, frozenset[tuple[str, str, str]]] = (0.0, frozenset())

    @translate_database_errors
    def create(self, owner: str, kind: str, name: str, grantee: str, created_by: str | None = None) -> Share:
        """Share `owner`'s resource `name` of `kind` with namespace `grantee` (an active identical
        share is returned as it is)."""
        check_namespace(owner)
        check_namespace(grantee)
        require_resource_name(kind, name)
        if "/" in name:
            raise InvalidArgument(f"{kind} name {name!r}: share a resource of the owning namespace by its plain name")
        with self._db.transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM shares WHERE owner = ? AND kind = ? AND name = ? AND grantee = ? "
                "AND revoked_at IS NULL",
                [owner, kind, name, grantee],
            ).fetchone()
            if row is not None:
                return Share(*row)
            share_id = new_sortable_id()
            (created_at,) = db.execute(
                f"INSERT INTO shares ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, {self._db.dialect.now}, NULL, NULL)"
                " RETURNING created_at",
                [share_id, owner, kind, name, grantee, created_by],
            ).fetchone()
            share = Share(share_id, owner, kind, name, grantee, created_by, float(created_at), None, None)
        self._forget()
        return share

    @translate_database_errors
    def revoke(self, owner: str, share_id: str, revoked_by: str | None = None) -> Share:
        """Revoke a share of `owner` (idempotent); functions lose the resource at their next call."""
        with self._db.transaction() as db:
            share = self._get(db, owner, share_id)
            if share.revoked_at is None:
                db.execute(
                    f"UPDATE shares SET revoked_by = ?, revoked_at = {self._db.dialect.now} WHERE id = ?",
                    [revoked_by, share_id],
                )
                share = self._get(db, owner, share_id)
        self._forget()
        return share

    @translate_database_errors
    def list(self, namespace: str | None = None) -> list[Share]:
        """Every share, or those `namespace` made or received, oldest first."""
        rows = self._db.db.execute(f"SELECT {_COLUMNS} FROM shares ORDER BY created_at, id").fetchall()
        return [s for s in (Share(*r) for r in rows) if namespace is None or namespace in (s.owner, s.grantee)]

    def active(self, kind: str, stored: str, grantee: str) -> bool:
        """Whether the resource with store name `stored` is shared with `grantee` now."""
        now = time.monotonic()
        with self._lock:
            expires, active = self._active
        if expires <= now:
            rows = self._db.db.execute("SELECT kind, owner, name, grantee FROM shares WHERE revoked_at IS NULL")
            active = frozenset((k, qualify(o, n), g) for k, o, n, g in rows)
            with self._lock:
                self._active = (now + self.ACTIVE_TTL_S, active)
        return (kind, stored, grantee) in active

    def _forget(self) -> None:
        with self._lock:
            self._active = (0.0, frozenset())

    @staticmethod
    def _get(db: Any, owner: str, share_id: str) -> Share:
        row = db.execute(f"SELECT {_COLUMNS} FROM shares WHERE id = ? AND owner = ?", [share_id, owner]).fetchone()
        if row is None:
            raise NotFound(f"namespace '{owner}' has no share {share_id!r}; list its shares to find the id")
        return Share(*row)
