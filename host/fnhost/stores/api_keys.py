"""API key rows, on either backend: a key's id, name, scopes, limits and the sha256 of its token.

Only the hash of a token is stored (`fnhost.control.auth` makes tokens and decides what a key may
do). Two writes must not race on any backend, and both are made atomic here:
- revoking a global admin key counts the other active global admins under a table lock, so two
  revokes at once cannot each leave the other as the last one and then revoke it too;
- the first key of an empty table (the bootstrap admin) is inserted under the same lock, so nodes
  starting together create exactly one, together with whatever the caller does in that transaction.

Times are the database's clock, in seconds since the epoch (REAL), as in every store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import Conflict, NotFound
from ..namespaces import DEFAULT
from ._common import SQLiteStore, epoch_of_iso, rebuild_table, sql_migration, translate_database_errors
from .database import SQLITE, AnyDatabase

T = TypeVar("T")

ADMIN = "admin"
"""The scope whose last active global holder cannot be revoked (`fnhost.control.auth` defines the scopes)."""

_create_api_keys = sql_migration(
    """CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL,
        scopes TEXT NOT NULL,          -- JSON list
        functions TEXT,                -- JSON list, NULL: every function
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )"""
)


def _add_namespaces(db: Any) -> None:
    dialect = getattr(db, "dialect", SQLITE)
    db.execute(dialect.ddl("ALTER TABLE api_keys ADD COLUMN namespace TEXT"))  # NULL: a global admin key
    db.execute(dialect.ddl("ALTER TABLE api_keys ADD COLUMN may_grant TEXT NOT NULL DEFAULT '[]'"))  # JSON list
    # Keys from before namespaces reached the only namespace there was. Non-admin keys grant nothing
    # until an admin gives them `may_grant` patterns: that they could grant anything was the hole.
    db.execute(
        f"UPDATE api_keys SET namespace = ? WHERE NOT {dialect.json_array_has('api_keys.scopes')}", [DEFAULT, ADMIN]
    )


_COLUMNS = "id, name, token_sha256, scopes, functions, namespace, may_grant, created_at, revoked_at"


def _real_timestamps(db: Any) -> None:
    def convert(row: tuple[Any, ...]) -> list[Any]:
        return [*row[:7], epoch_of_iso(row[7]), epoch_of_iso(row[8])]

    rebuild_table(
        db,
        "api_keys",
        """id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL,
        scopes TEXT NOT NULL,              -- JSON list
        functions TEXT,                    -- JSON list, NULL: every function of its namespace
        namespace TEXT,                    -- NULL: a global admin key
        may_grant TEXT NOT NULL DEFAULT '[]',  -- JSON list of kind:glob patterns
        created_at REAL NOT NULL,
        revoked_at REAL""",
        _COLUMNS,
        convert,
    )


MIGRATIONS = [_create_api_keys, _add_namespaces, _real_timestamps]
_INFO_COLUMNS = "id, name, scopes, functions, namespace, may_grant, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as listed: never the token nor its hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    functions: tuple[str, ...] | None  # None: every function of its namespace
    namespace: str | None  # None: a global admin key
    may_grant: tuple[str, ...]
    created_at: float
    revoked_at: float | None


class ApiKeyStore(SQLiteStore):
    """The `api_keys` table. Arguments are checked by `fnhost.control.auth.ApiKeys`, which is what callers use."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "api_keys", MIGRATIONS)

    @translate_database_errors
    def insert(
        self,
        key_id: str,
        name: str,
        token_sha256: str,
        scopes: list[str],
        functions: list[str] | None,
        namespace: str | None,
        may_grant: list[str],
    ) -> ApiKeyInfo:
        with self._db.transaction() as db:
            (created_at,) = db.execute(
                "INSERT INTO api_keys (id, name, token_sha256, scopes, functions, namespace, may_grant, created_at)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, {self._db.dialect.now}) RETURNING created_at",
                [
                    key_id,
                    name,
                    token_sha256,
                    json.dumps(scopes),
                    None if functions is None else json.dumps(functions),
                    namespace,
                    json.dumps(may_grant),
                ],
            ).fetchone()
        return ApiKeyInfo(
            key_id, name, tuple(scopes), None if functions is None else tuple(functions), namespace,
            tuple(may_grant), float(created_at), None,
        )  # fmt: skip

    @translate_database_errors
    def find(self, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        """The stored token hash and the key `key_id`, or None."""
        row = self._db.db.execute(
            f"SELECT token_sha256, {_INFO_COLUMNS} FROM api_keys WHERE id = ?", [key_id]
        ).fetchone()
        return None if row is None else (row[0], _info(row[1:]))

    @translate_database_errors
    def get(self, key_id: str) -> ApiKeyInfo | None:
        row = self._db.db.execute(f"SELECT {_INFO_COLUMNS} FROM api_keys WHERE id = ?", [key_id]).fetchone()
        return None if row is None else _info(row)

    @translate_database_errors
    def list(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """Every key (or those of `namespace`), oldest first."""
        rows = self._db.db.execute(f"SELECT {_INFO_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
        return [info for info in map(_info, rows) if namespace is None or info.namespace == namespace]

    @translate_database_errors
    def revoke(self, key_id: str, namespace: str | None = None, *, keep_a_global_admin: bool = True) -> ApiKeyInfo:
        """Revoke `key_id` (idempotent); with `namespace`, only a key of that namespace (else `NotFound`).
        With `keep_a_global_admin`, `Conflict` instead of revoking the last active global admin key."""
        with self._db.transaction() as db:
            info = self.get(key_id)
            if info is None or (namespace is not None and info.namespace != namespace):
                raise NotFound(f"no API key {key_id!r}; list keys to find its id")
            if info.revoked_at is not None:
                return info
            if keep_a_global_admin and ADMIN in info.scopes and info.namespace is None:
                self._db.lock_table(db, "api_keys")  # two revokes must not each leave the other admin
                (admins,) = db.execute(
                    f"SELECT COUNT(*) FROM api_keys WHERE {self._db.dialect.json_array_has('api_keys.scopes')}"
                    " AND revoked_at IS NULL AND namespace IS NULL",
                    [ADMIN],
                ).fetchone()
                if admins <= 1:
                    raise Conflict(f"API key {key_id} is the last active admin key; create another admin key first")
            db.execute(f"UPDATE api_keys SET revoked_at = {self._db.dialect.now} WHERE id = ?", [key_id])
            revoked = self.get(key_id)
            assert revoked is not None  # updated in this transaction
            return revoked

    @translate_database_errors
    def insert_first(self, make: Callable[[], ApiKeyInfo], then: Callable[[ApiKeyInfo], T]) -> T | None:
        """If the table holds no key at all: `make()` (which inserts through this store) and `then(key)`,
        in one transaction under the table lock; returns what `then` returned. None if keys existed.
        Either raising rolls both back."""
        with self._db.transaction() as db:
            self._db.lock_table(db, "api_keys")  # nodes starting together create one first key
            (count,) = db.execute("SELECT COUNT(*) FROM api_keys").fetchone()
            if count:
                return None
            return then(make())


def _info(row: tuple[Any, ...]) -> ApiKeyInfo:
    key_id, name, scopes, functions, namespace, may_grant, created_at, revoked_at = row
    return ApiKeyInfo(
        key_id=key_id,
        name=name,
        scopes=tuple(json.loads(scopes)),
        functions=None if functions is None else tuple(json.loads(functions)),
        namespace=namespace,
        may_grant=tuple(json.loads(may_grant)),
        created_at=float(created_at),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )
