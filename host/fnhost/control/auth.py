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
kv, secrets, queues, queue triggers and outbound http origins — is its `may_grant` list of
`kind:glob` patterns (`secret:billing-*`, `kv:billing`, `http:https://*.example.org`); an admin
may grant anything of its namespace. A function the
key may not see at all is reported as not existing (404), never as forbidden.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path

from ..capabilities import GRANTED, by_kind
from ..capabilities import RESOURCE_KINDS as KINDS
from ..errors import Conflict, Forbidden, NotFound, Unauthorized
from ..manifest import NAME_RE
from ..namespaces import DEFAULT, check_namespace, namespace_of, split
from ..stores.api_keys import ADMIN, ApiKeyInfo, ApiKeyStore
from ..stores.database import AnyDatabase
from ..stores.registry import no_such_function
from ._files import write_secret_file

__all__ = ["ADMIN", "DEPLOY", "INVOKE", "SCOPES", "ApiKeyInfo", "ApiKeys", "Principal"]

DEPLOY, INVOKE = "deploy", "invoke"
SCOPES = frozenset({ADMIN, DEPLOY, INVOKE})
TOKEN_PREFIX = "fnh"
BOOTSTRAP_FILE = "admin.key"
BOOTSTRAP_NAME = "bootstrap-admin"

_TOKEN_RE = re.compile(r"fnh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_HOW_TO_SEND = "send it as `Authorization: Bearer <token>`"
# Compared against when the key id is unknown, so unknown and wrong tokens take the same time.
_DUMMY_HASH = hashlib.sha256(b"fnhost: no such key").hexdigest()


def _is_grant_pattern(pattern: object) -> bool:
    """`kind:glob`, the glob one that the capability of `kind` can match its grants with."""
    if not isinstance(pattern, str):
        return False
    kind, sep, glob = pattern.partition(":")
    capability = by_kind(kind)
    return bool(sep) and capability is not None and capability.is_grant_pattern(glob)


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


class ApiKeys:
    """API keys in the host database: tokens, the rules of what a key may be, and authentication
    (the rows are `fnhost.stores.api_keys`)."""

    def __init__(self, db: AnyDatabase) -> None:
        self._store = ApiKeyStore(db)

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
            if not _is_grant_pattern(pattern):
                examples = ", ".join(filter(None, (c.grant_pattern_example for c in GRANTED)))
                raise ValueError(
                    f"may_grant: {pattern!r} is not KIND:NAME with KIND one of {', '.join(KINDS)} and NAME a "
                    f"resource name, '*' and '?' allowed (e.g. 'secret:billing-*', 'kv:billing', {examples})"
                )
        key_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        self._store.insert(key_id, name, _token_hash(token), sorted(scope_set), functions, namespace, patterns)
        return key_id, token

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
        found = self._store.find(key_id)
        stored_hash = found[0] if found else _DUMMY_HASH
        if not hmac.compare_digest(stored_hash, _token_hash(token)) or found is None:
            raise Unauthorized(f"unknown API key; check the token, {_HOW_TO_SEND}")
        return _principal(found[1])

    def principal(self, key_id: str) -> Principal:
        """The Principal of key `key_id` as it is now (a console session re-reads its key on every request);
        `Unauthorized` if it does not exist or was revoked."""
        info = self._store.get(key_id)
        if info is None:
            raise Unauthorized(f"API key {key_id} no longer exists; sign in again with a valid key")
        return _principal(info)

    def list(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """Every key, or (`namespace` given) the keys of that namespace."""
        return self._store.list(namespace)

    def get(self, key_id: str, namespace: str | None = None) -> ApiKeyInfo:
        """The key `key_id`; with `namespace`, `NotFound` unless it is a key of that namespace."""
        info = self._store.get(key_id)
        if info is None or (namespace is not None and info.namespace != namespace):
            raise NotFound(f"no API key {key_id!r}; list keys to find its id")
        return info

    def revoke(self, key_id: str, namespace: str | None = None) -> ApiKeyInfo:
        """Revoke a key (idempotent); with `namespace`, only a key of that namespace. Refuses to
        revoke the last active global admin key: nobody could manage keys afterwards, and bootstrap
        only happens on an empty key table."""
        return self._store.revoke(key_id, namespace, keep_a_global_admin=True)

    def ensure_bootstrap_admin(self, data_dir: str | Path) -> Path | None:
        """On first start (no keys at all) create an admin key and write its token to
        `data_dir/admin.key` (mode 0600, never overwritten). Returns that path, or None if keys
        already existed. Safe to race: the check and the insert share one write transaction."""
        path = Path(data_dir) / BOOTSTRAP_FILE
        token = ""

        def make() -> ApiKeyInfo:
            nonlocal token
            if path.exists():
                raise Conflict(
                    f"{path} exists but the key database is empty (a stale token from another "
                    "database?); delete the file and start again to create a new admin key"
                )
            key_id, token = self.create(BOOTSTRAP_NAME, {ADMIN})
            return self.get(key_id)

        # Written inside the transaction: if the write fails the key is rolled back, so no key
        # exists whose token nobody has.
        return self._store.insert_first(make, lambda _: write_secret_file(path, (token + "\n").encode("ascii")))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _principal(info: ApiKeyInfo) -> Principal:
    """The caller a key identifies; `Unauthorized` once it was revoked."""
    if info.revoked_at is not None:
        revoked = datetime.fromtimestamp(info.revoked_at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        raise Unauthorized(f"API key {info.key_id} was revoked at {revoked}; ask an admin for a new key")
    return Principal(
        key_id=info.key_id,
        name=info.name,
        scopes=frozenset(info.scopes),
        functions=info.functions,
        namespace=info.namespace,
        may_grant=info.may_grant,
    )
