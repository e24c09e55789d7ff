"""Functions, their immutable versions and the aliases that name them.

Every deploy of a function adds version N+1 (numbers start at 1 and never repeat while the function
exists); a version never changes afterwards. An alias maps a name to a version. The `live` alias,
which invocations use by default, follows the newest deploy until it is set explicitly (pinned);
`unpin_live` makes it follow again. Redeploying the same wasm with the same manifest as the newest
version returns that version instead of adding one, so deploys can be retried safely.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, NotFound
from ..names import ALIAS, SHA256
from ..namespaces import QUALIFIED_FUNCTION_RE
from ._common import SQLiteStore, require_pattern, sql_migration, translate_database_errors
from .database import AnyDatabase, Connection
from .errors import InvalidArgument

LIVE = "live"
"""The alias an invocation without a qualifier resolves."""
_MAX_NAMES_IN_MESSAGE = 20

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE functions (name TEXT PRIMARY KEY, created_at REAL NOT NULL)",
        "CREATE TABLE versions ("
        " name TEXT NOT NULL REFERENCES functions (name),"
        " version INTEGER NOT NULL,"
        " sha256 TEXT NOT NULL,"
        " manifest TEXT NOT NULL,"
        " created_at REAL NOT NULL,"
        " created_by TEXT,"
        " PRIMARY KEY (name, version)"
        ")",
        "CREATE INDEX versions_sha256 ON versions (sha256)",
        "CREATE TABLE aliases ("
        " name TEXT NOT NULL,"
        " alias TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        " pinned INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (name, alias),"
        " FOREIGN KEY (name, version) REFERENCES versions (name, version)"
        ")",
    ),
]


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: int
    sha256: str
    """Hex SHA-256 of the version's wasm binary: the name of its file in the wasm store."""
    manifest_json: str
    created_at: float
    created_by: str | None


@dataclass(frozen=True)
class AliasRecord:
    alias: str
    version: int
    pinned: bool
    """False only for `live` while it follows the newest deploy."""


@dataclass(frozen=True)
class AliasMove:
    """One alias moved by `Registry.release`: from `previous` (None: it did not exist) to `version`."""

    function: str
    alias: str
    previous: int | None
    version: int


@dataclass(frozen=True)
class FunctionRecord:
    name: str
    created_at: float
    latest_version: int
    aliases: tuple[AliasRecord, ...]


_VERSION_COLUMNS = "name, version, sha256, manifest, created_at, created_by"


def _version(row: Any) -> VersionRecord:
    return VersionRecord(
        name=row[0], version=row[1], sha256=row[2], manifest_json=row[3], created_at=row[4], created_by=row[5]
    )


class Registry(SQLiteStore):
    """The function registry over the host database. Safe to use from several threads and processes."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "registry", MIGRATIONS)

    def add_version(self, name: str, sha256: str, manifest_json: str, created_by: str | None = None) -> VersionRecord:
        """Record a deploy; return the new version, or the newest one if it is identical."""
        return self.record_deploy(name, sha256, manifest_json, created_by)[0]

    @translate_database_errors
    def record_deploy(
        self, name: str, sha256: str, manifest_json: str, created_by: str | None = None, *, go_live: bool = True
    ) -> tuple[VersionRecord, bool]:
        """`add_version`, also saying whether this call created the version (False: an identical
        newest version already existed). Decided inside the write transaction, so exact under races.

        `go_live=False` records the version without touching `live` (a new function then has no
        `live` until `release` points it): the first phase of `fnhost up`."""
        _check_function_name(name)
        require_pattern("sha256", sha256, SHA256.pattern, SHA256.rule)
        manifest = _parse_manifest(manifest_json)
        with self._db.transaction() as db:
            now = time.time()
            db.execute(
                "INSERT INTO functions (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [name, now]
            )
            # PostgreSQL: concurrent deploys of one function take turns here, so versions number up without gaps
            # or duplicates (SQLite's writer lock already does that).
            db.execute(f"SELECT name FROM functions WHERE name = ?{self._db.dialect.for_update}", [name])
            newest = self._latest(db, name)
            if newest and newest.sha256 == sha256 and json.loads(newest.manifest_json) == manifest:
                return newest, False
            record = VersionRecord(
                name=name,
                version=newest.version + 1 if newest else 1,
                sha256=sha256,
                manifest_json=manifest_json,
                created_at=now,
                created_by=created_by,
            )
            db.execute(
                f"INSERT INTO versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [name, record.version, sha256, manifest_json, now, created_by],
            )
            if go_live:
                db.execute(
                    "INSERT INTO aliases (name, alias, version, pinned) VALUES (?, ?, ?, 0) "
                    "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version WHERE aliases.pinned = 0",
                    [name, LIVE, record.version],
                )
                self._db.notify(db, f"function:{name}")
            return record, True

    @translate_database_errors
    def get_version(self, name: str, version: int) -> VersionRecord | None:
        row = self._db.db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? AND version = ?", [name, version]
        ).fetchone()
        return _version(row) if row else None

    @translate_database_errors
    def latest(self, name: str) -> VersionRecord | None:
        return self._latest(self._db.db, name)

    @translate_database_errors
    def versions(self, name: str) -> list[VersionRecord]:
        """Every version of `name`, oldest first ([] for an unknown function)."""
        rows = self._db.db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? ORDER BY version", [name]
        )
        return [_version(row) for row in rows]

    @translate_database_errors
    def functions(self) -> list[FunctionRecord]:
        """Every function with its newest version number and aliases, sorted by name."""
        db = self._db.db
        aliases: dict[str, list[AliasRecord]] = {}
        for name, alias, version, pinned in db.execute(
            "SELECT name, alias, version, pinned FROM aliases ORDER BY name, alias"
        ):
            aliases.setdefault(name, []).append(AliasRecord(alias, version, bool(pinned)))
        rows = db.execute(
            "SELECT f.name, f.created_at, max(v.version) FROM functions f "
            "JOIN versions v ON v.name = f.name GROUP BY f.name ORDER BY f.name"
        )
        return [
            FunctionRecord(name, created_at, latest, tuple(aliases.get(name, ())))
            for name, created_at, latest in rows
        ]

    @translate_database_errors
    def get_function(self, name: str) -> FunctionRecord | None:
        db = self._db.db
        row = db.execute(
            "SELECT f.created_at, max(v.version) FROM functions f JOIN versions v ON v.name = f.name "
            "WHERE f.name = ? GROUP BY f.name",
            [name],
        ).fetchone()
        if row is None:
            return None
        return FunctionRecord(name, row[0], row[1], tuple(self._aliases(db, name)))

    @translate_database_errors
    def aliases(self, name: str) -> list[AliasRecord]:
        return self._aliases(self._db.db, name)

    @translate_database_errors
    def resolve(self, name: str, qualifier: str | int | None = None) -> VersionRecord:
        """The version a qualifier names: None means `live`, digits a version number, else an alias.

        Raises `NotFound` naming what does exist.
        """
        db = self._db.db
        if qualifier is None:
            qualifier = LIVE
        if isinstance(qualifier, int) or (qualifier.isascii() and qualifier.isdigit()):
            return self._existing_version(db, name, int(qualifier))
        row = db.execute(
            "SELECT version FROM aliases WHERE name = ? AND alias = ?", [name, qualifier]
        ).fetchone()
        if row is None:
            if self._latest(db, name) is None:
                raise self._no_function(db, name)
            known = [a.alias for a in self._aliases(db, name)]
            raise NotFound(
                f"function {name!r} has no alias {qualifier!r}{_listing('its aliases', known)}; "
                "a qualifier is a version number or an alias"
            )
        return self._existing_version(db, name, row[0])

    @translate_database_errors
    def set_alias(self, name: str, alias: str, version: int) -> AliasRecord:
        """Point `alias` at `version` and pin it. Setting `live` stops it following new deploys."""
        require_pattern("alias", alias, ALIAS.pattern, f"use {ALIAS.rule}")
        with self._db.transaction() as db:
            self._existing_version(db, name, version)
            db.execute(
                "INSERT INTO aliases (name, alias, version, pinned) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, pinned = 1",
                [name, alias, version],
            )
            self._db.notify(db, f"function:{name}")
        return AliasRecord(alias, version, True)

    @translate_database_errors
    def release(self, moves: Sequence[tuple[str, str, int]]) -> list[AliasMove]:
        """Point several aliases, of several functions, at versions in one transaction: all move or none.

        Each move is (function, alias, version). `live` keeps following later deploys (it is not
        pinned by a release); a `live` that is pinned (a rollback) refuses the whole release with
        `Conflict`, naming it and the fix. Other aliases are pinned, as by `set_alias`.
        """
        for _, alias, _ in moves:
            require_pattern("alias", alias, ALIAS.pattern, f"use {ALIAS.rule}")
        out: list[AliasMove] = []
        with self._db.transaction() as db:
            pinned: list[str] = []
            for name, alias, version in moves:
                self._existing_version(db, name, version)
                row = db.execute(
                    f"SELECT version, pinned FROM aliases WHERE name = ? AND alias = ?{self._db.dialect.for_update}",
                    [name, alias],
                ).fetchone()
                if alias == LIVE and row is not None and row[1] and row[0] != version:
                    pinned.append(f"{name}:live is pinned to version {row[0]}")
                out.append(AliasMove(name, alias, None if row is None else row[0], version))
            if pinned:
                raise Conflict(
                    f"nothing was released: {'; '.join(pinned)} (a rollback); unpin it (`fnhost unpin NAME`, "
                    "DELETE .../aliases/live) to release a new version, or leave it out"
                )
            for move in out:
                if move.previous == move.version:
                    continue  # already there (a pinned live stays pinned)
                db.execute(
                    "INSERT INTO aliases (name, alias, version, pinned) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, pinned = excluded.pinned",
                    [move.function, move.alias, move.version, 0 if move.alias == LIVE else 1],
                )
            for name in sorted({name for name, _, _ in moves}):
                self._db.notify(db, f"function:{name}")
        return out

    @translate_database_errors
    def unpin_live(self, name: str) -> AliasRecord:
        """Make `live` follow deploys again; it points at the newest version at once."""
        with self._db.transaction() as db:
            newest = self._latest(db, name)
            if newest is None:
                raise self._no_function(db, name)
            db.execute(
                "UPDATE aliases SET version = ?, pinned = 0 WHERE name = ? AND alias = ?",
                [newest.version, name, LIVE],
            )
            self._db.notify(db, f"function:{name}")
        return AliasRecord(LIVE, newest.version, False)

    @translate_database_errors
    def delete_alias(self, name: str, alias: str) -> bool:
        """Remove an alias other than `live`; False if it did not exist."""
        if alias == LIVE:
            raise InvalidArgument(
                f"the {LIVE!r} alias cannot be deleted; pin it with set_alias or use unpin_live"
            )
        with self._db.transaction() as db:
            self._db.notify(db, f"function:{name}")
            return bool(db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", [name, alias]).rowcount > 0)

    @translate_database_errors
    def delete_function(self, name: str) -> list[str]:
        """Remove a function with its versions and aliases.

        Returns the sha256s (sorted) that no version of any function refers to any more, so the
        caller can delete those wasm and compiled files.
        """
        with self._db.transaction() as db:
            hashes = sorted(
                {row[0] for row in db.execute("SELECT sha256 FROM versions WHERE name = ?", [name])}
            )
            if not hashes:
                raise self._no_function(db, name)
            db.execute("DELETE FROM aliases WHERE name = ?", [name])
            db.execute("DELETE FROM versions WHERE name = ?", [name])
            db.execute("DELETE FROM functions WHERE name = ?", [name])
            self._db.notify(db, f"deleted:{name}")  # its version numbers may be reused: drop prepared code too
            placeholders = ", ".join("?" * len(hashes))
            still_used = {
                row[0]
                for row in db.execute(
                    f"SELECT DISTINCT sha256 FROM versions WHERE sha256 IN ({placeholders})", hashes
                )
            }
        return [h for h in hashes if h not in still_used]

    @staticmethod
    def _latest(db: Connection, name: str) -> VersionRecord | None:
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1", [name]
        ).fetchone()
        return _version(row) if row else None

    @staticmethod
    def _aliases(db: Connection, name: str) -> list[AliasRecord]:
        rows = db.execute("SELECT alias, version, pinned FROM aliases WHERE name = ? ORDER BY alias", [name])
        return [AliasRecord(alias, version, bool(pinned)) for alias, version, pinned in rows]

    def _existing_version(self, db: Connection, name: str, version: int) -> VersionRecord:
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63:
            raise InvalidArgument(f"version must be an integer 1..2^63-1, got {version!r}")
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE name = ? AND version = ?", [name, version]
        ).fetchone()
        if row is not None:
            return _version(row)
        newest = self._latest(db, name)
        if newest is None:
            raise self._no_function(db, name)
        raise NotFound(f"function {name!r} has no version {version} (its versions are 1..{newest.version})")

    def _no_function(self, db: Connection, name: str) -> NotFound:
        # No listing of the functions that do exist: the caller may not be allowed to see them.
        return NotFound(no_such_function(name))


def no_such_function(name: str) -> str:
    """The one message for a function that does not exist or that the caller may not see."""
    return f"function {name!r} does not exist; `fnhost list` (GET /v1/functions) shows the ones you may use"


def _check_function_name(name: str) -> None:
    require_pattern(
        "function name",
        name,
        QUALIFIED_FUNCTION_RE,
        "use 1..63 lower-case letters, digits or '-', starting with a letter (after 'namespace/')",
    )


def _parse_manifest(manifest_json: str) -> Any:
    if not isinstance(manifest_json, str):
        raise InvalidArgument(f"manifest_json must be a JSON string, got {type(manifest_json).__name__}")
    try:
        return json.loads(manifest_json)
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"manifest_json is not valid JSON: {e}") from None


def _listing(label: str, names: list[str]) -> str:
    if not names:
        return f" ({label}: none)"
    shown = ", ".join(names[:_MAX_NAMES_IN_MESSAGE])
    more = f" and {len(names) - _MAX_NAMES_IN_MESSAGE} more" if len(names) > _MAX_NAMES_IN_MESSAGE else ""
    return f" ({label}: {shown}{more})"
