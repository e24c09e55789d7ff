"""API keys: who may call the control plane and the function endpoints.

A token is `fnh_<key id>_<secret>`: the key id (16 hex digits) finds the row without scanning, the
secret is 256 random bits. Only sha256(token) is stored — a 256-bit random secret needs no slow
hash — and it is compared in constant time. A lost token cannot be recovered, only revoked.

Scopes:
- `admin`: API keys, secrets, the audit log — and everything the other scopes allow;
- `deploy`: functions, versions and aliases;
- `invoke`: calling functions.
`deploy` and `invoke` are independent: a CI key that deploys and smoke-tests wants both. A key's
`functions` list, when set, limits its `deploy` and `invoke` rights to those functions; an admin key
cannot be limited (it could mint an unlimited key anyway).

Namespaces (docs/security.md, "Tenancy"): every key belongs to one namespace, except a global
admin key (namespace None), which reaches every namespace. A key never reaches a function or a
resource of another namespace. What a non-admin key may *grant* when it deploys — the manifest's
kv, secrets, queues and queue triggers — is its `may_grant` list of `kind:glob` patterns
(`secret:billing-*`, `kv:billing`); an admin may grant anything of its namespace. A function the
key may not see at all is reported as not existing (404), never as forbidden.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..capabilities import RESOURCE_KINDS as KINDS
from ..errors import Conflict, Forbidden, NotFound, Unauthorized
from ..manifest import NAME_RE
from ..namespaces import DEFAULT, check_namespace, namespace_of, split
from ..stores._common import sql_migration, translate_sqlite_errors
from ..stores.database import SQLITE, AnyDatabase
from ..stores.registry import no_such_function
from ._files import write_secret_file

ADMIN, DEPLOY, INVOKE = "admin", "deploy", "invoke"
SCOPES = frozenset({ADMIN, DEPLOY, INVOKE})
TOKEN_PREFIX = "fnh"
BOOTSTRAP_FILE = "admin.key"
BOOTSTRAP_NAME = "bootstrap-admin"

_TOKEN_RE = re.compile(r"fnh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_HOW_TO_SEND = "send it as `Authorization: Bearer <token>`"
# Compared against when the key id is unknown, so unknown and wrong tokens take the same time.
_DUMMY_HASH = hashlib.sha256(b"fnhost: no such key").hexdigest()


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


MIGRATIONS = [_create_api_keys, _add_namespaces]
_KEY_COLUMNS = "id, name, scopes, functions, namespace, may_grant, created_at, revoked_at"
_GRANT_PATTERN_RE = re.compile(
    "(" + "|".join(KINDS) + r"):([a-z][a-z0-9-]{0,62}/)?[a-zA-Z0-9*?][a-zA-Z0-9._*?-]{0,127}"
)


@dataclass(frozen=True)
class Principal:
    """The caller an API key identifies."""

    key_id: str
    name: str
    scopes: frozenset[str]
    functions: tuple[str, ...] | None  # None: every function of its namespace
    namespace: str | None = DEFAULT  # None: a global admin key
    may_grant: tuple[str, ...] = ()  # `kind:glob` patterns; admins may grant anything of their namespace

    def reaches(self, namespace: str) -> bool:
        return self.namespace is None or self.namespace == namespace

    def admin_of(self, namespace: str) -> bool:
        return ADMIN in self.scopes and self.reaches(namespace)

    def sees(self, function: str) -> bool:
        """Whether this key may know that `function` (a store name, `ns/name`) exists at all."""
        namespace, plain = split(function)
        if not self.reaches(namespace):
            return False
        return ADMIN in self.scopes or self.functions is None or plain in self.functions

    def allows(self, scope: str, function: str | None = None, *, namespace: str | None = None) -> bool:
        """`scope` on `function` (a store name), or in `namespace`, or (neither named) anywhere."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (known: {', '.join(sorted(SCOPES))})")
        if function is not None:
            namespace = namespace_of(function)
        if namespace is not None and not self.reaches(namespace):
            return False
        if ADMIN in self.scopes:
            return True
        if scope not in self.scopes:
            return False
        return function is None or self.sees(function)

    def require(self, scope: str, function: str | None = None, *, namespace: str | None = None) -> None:
        """Raise unless this key may use `scope` (on `function` or in `namespace`, when named):
        `NotFound` for a function it may not see, else `Forbidden` naming what it lacks."""
        if self.allows(scope, function, namespace=namespace):
            return
        if function is not None and not self.sees(function):
            raise NotFound(no_such_function(function))
        if namespace is not None and not self.reaches(namespace):
            raise Forbidden(
                f"API key {self.key_id} ({self.name}) belongs to namespace '{self.namespace}', not "
                f"'{namespace}'; use a key of that namespace"
            )
        raise Forbidden(
            f"API key {self.key_id} ({self.name}) lacks the '{scope}' scope; "
            f"use a key that has it (its scopes: {', '.join(sorted(self.scopes))})"
        )

    def may_grant_resource(self, kind: str, reference: str) -> bool:
        """Whether this key may give a function `reference` (as the manifest names it, resolved in
        the function's namespace: `name`, or `ns/name` for a shared resource) of `kind`."""
        if ADMIN in self.scopes:
            return True
        return any(
            k == kind and fnmatchcase(reference, glob) for k, _, glob in (p.partition(":") for p in self.may_grant)
        )


@dataclass(frozen=True)
class ApiKeyInfo:
    """What `ApiKeys.list` shows: never the token nor its hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    functions: tuple[str, ...] | None
    namespace: str | None
    may_grant: tuple[str, ...]
    created_at: str
    revoked_at: str | None


class ApiKeys:
    """API keys in the host database."""

    def __init__(self, db: AnyDatabase) -> None:
        self._db = db
        db.migrate("api_keys", MIGRATIONS)

    @translate_sqlite_errors
    def create(
        self,
        name: str,
        scopes: Iterable[str],
        functions: list[str] | None = None,
        *,
        namespace: str | None = None,
        may_grant: list[str] | None = None,
    ) -> tuple[str, str]:
        """Create a key; return (key_id, token). The token is shown this once and never stored.

        `namespace` None makes an admin key global and any other key a key of `default`.
        `may_grant`: `kind:glob` patterns (kind: kv, secret, queue) of what its deploys may grant.
        """
        scopes = list(scopes)
        if not all(isinstance(s, str) for s in scopes):
            raise ValueError(f"scopes: must be scope names ({', '.join(sorted(SCOPES))}), got {scopes!r}")
        scope_set = set(scopes)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError(f"name: must be 1..100 characters, got {name!r}")
        if not scope_set or not scope_set <= SCOPES:
            raise ValueError(
                f"scopes: must be a non-empty subset of {', '.join(sorted(SCOPES))}, got {sorted(scope_set)}"
            )
        if functions is not None:
            if ADMIN in scope_set:
                raise ValueError(
                    "functions: an admin key cannot be limited to functions; drop one of the two"
                )
            for fn in functions:
                if not isinstance(fn, str) or not NAME_RE.fullmatch(fn):
                    raise ValueError(f"functions: {fn!r} is not a valid function name")
            functions = sorted(set(functions))
        if namespace is None and ADMIN not in scope_set:
            namespace = DEFAULT
        if namespace is not None:
            check_namespace(namespace)
        patterns = sorted(set(may_grant or ()))
        if patterns and ADMIN in scope_set:
            raise ValueError("may_grant: an admin key may grant anything of its namespace; drop may_grant")
        for pattern in patterns:
            if not isinstance(pattern, str) or not _GRANT_PATTERN_RE.fullmatch(pattern):
                raise ValueError(
                    f"may_grant: {pattern!r} is not KIND:NAME with KIND one of {', '.join(KINDS)} and NAME a "
                    "resource name, '*' and '?' allowed (e.g. 'secret:billing-*', 'kv:billing')"
                )
        key_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO api_keys (id, name, token_sha256, scopes, functions, namespace, may_grant, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    key_id,
                    name,
                    _token_hash(token),
                    json.dumps(sorted(scope_set)),
                    None if functions is None else json.dumps(functions),
                    namespace,
                    json.dumps(patterns),
                    _now(),
                ],
            )
        return key_id, token

    @translate_sqlite_errors
    def authenticate(self, authorization_header: str | None) -> Principal:
        """The Principal of an `Authorization: Bearer <token>` header; raises Unauthorized."""
        if not authorization_header or not authorization_header.strip():
            raise Unauthorized(f"missing API key; {_HOW_TO_SEND}")
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(f"malformed Authorization header; {_HOW_TO_SEND}")
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise Unauthorized(f"malformed API key (expected fnh_<id>_<secret>); {_HOW_TO_SEND}")
        key_id = match.group(1)
        row = self._db.db.execute(
            "SELECT token_sha256, " + _KEY_COLUMNS + " FROM api_keys WHERE id = ?", [key_id]
        ).fetchone()
        stored_hash = row[0] if row else _DUMMY_HASH
        if not hmac.compare_digest(stored_hash, _token_hash(token)) or row is None:
            raise Unauthorized(f"unknown API key; check the token, {_HOW_TO_SEND}")
        info = _info(row[1:])
        if info.revoked_at is not None:
            raise Unauthorized(f"API key {key_id} was revoked at {info.revoked_at}; ask an admin for a new key")
        return Principal(
            key_id=key_id,
            name=info.name,
            scopes=frozenset(info.scopes),
            functions=info.functions,
            namespace=info.namespace,
            may_grant=info.may_grant,
        )

    @translate_sqlite_errors
    def list(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """Every key, or (`namespace` given) the keys of that namespace."""
        rows = self._db.db.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
        ).fetchall()
        return [info for info in map(_info, rows) if namespace is None or info.namespace == namespace]

    @translate_sqlite_errors
    def get(self, key_id: str, namespace: str | None = None) -> ApiKeyInfo:
        """The key `key_id`; with `namespace`, `NotFound` unless it is a key of that namespace."""
        row = self._db.db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", [key_id]).fetchone()
        if row is None or (namespace is not None and row[4] != namespace):
            raise NotFound(f"no API key {key_id!r}; list keys to find its id")
        return _info(row)

    @translate_sqlite_errors
    def revoke(self, key_id: str, namespace: str | None = None) -> ApiKeyInfo:
        """Revoke a key (idempotent); with `namespace`, only a key of that namespace. Refuses to
        revoke the last active global admin key: nobody could manage keys afterwards, and bootstrap
        only happens on an empty key table."""
        with self._db.transaction() as db:
            info = self.get(key_id, namespace)
            if info.revoked_at is not None:
                return info
            if ADMIN in info.scopes and info.namespace is None:
                self._db.lock_table(db, "api_keys")  # two revokes must not each leave the other admin
                (admins,) = db.execute(
                    f"SELECT COUNT(*) FROM api_keys WHERE {self._db.dialect.json_array_has('api_keys.scopes')}"
                    " AND revoked_at IS NULL AND namespace IS NULL",
                    [ADMIN],
                ).fetchone()
                if admins <= 1:
                    raise Conflict(
                        f"API key {key_id} is the last active admin key; create another admin key first"
                    )
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [_now(), key_id])
            return self.get(key_id)

    @translate_sqlite_errors
    def ensure_bootstrap_admin(self, data_dir: str | Path) -> Path | None:
        """On first start (no keys at all) create an admin key and write its token to
        `data_dir/admin.key` (mode 0600, never overwritten). Returns that path, or None if keys
        already existed. Safe to race: the check and the insert share one write transaction."""
        path = Path(data_dir) / BOOTSTRAP_FILE
        with self._db.transaction() as db:
            self._db.lock_table(db, "api_keys")  # nodes starting together create one bootstrap key
            (count,) = db.execute("SELECT COUNT(*) FROM api_keys").fetchone()
            if count:
                return None
            if path.exists():
                raise Conflict(
                    f"{path} exists but the key database is empty (a stale token from another "
                    "database?); delete the file and start again to create a new admin key"
                )
            _, token = self.create(BOOTSTRAP_NAME, {ADMIN})
            # Written inside the transaction: if the write fails the key is rolled back, so no key
            # exists whose token nobody has.
            return write_secret_file(path, (token + "\n").encode("ascii"))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _info(row: tuple[str, ...]) -> ApiKeyInfo:
    key_id, name, scopes, functions, namespace, may_grant, created_at, revoked_at = row
    return ApiKeyInfo(
        key_id=key_id,
        name=name,
        scopes=tuple(json.loads(scopes)),
        functions=None if functions is None else tuple(json.loads(functions)),
        namespace=namespace,
        may_grant=tuple(json.loads(may_grant)),
        created_at=created_at,
        revoked_at=revoked_at,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
