"""Key-value storage in named buckets (the store behind the `kv` capability).

Keys are UTF-8 strings listed in byte order. SQLite's default BINARY collation compares TEXT with
`memcmp` over its UTF-8 bytes, and UTF-8 byte order equals code point order, so a prefix listing is
the range `prefix <= key < successor(prefix)` on the primary key: an index seek, with no LIKE
pattern for '%' or '_' to be misread.
"""

from __future__ import annotations

import time
from typing import Protocol

from ._common import (
    SQLiteStore,
    bytes_within,
    int_in_range,
    require_resource_name,
    sql_migration,
    translate_sqlite_errors,
    utf8_within,
)
from .database import AnyDatabase

MAX_LIST_LIMIT = 10_000
"""The most keys one `list_keys` call returns, whatever `limit` asks for."""

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE kv_entries ("
        " bucket TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " value BLOB NOT NULL,"
        " updated_at REAL NOT NULL,"
        " PRIMARY KEY (bucket, key)"
        ") WITHOUT ROWID"
    ),
]


class KVStore(Protocol):
    """Buckets of byte values under string keys."""

    def get(self, bucket: str, key: str) -> bytes | None:
        """The value of `key`, or None if it is not set."""
        ...

    def set(self, bucket: str, key: str, value: bytes) -> None:
        """Create or replace `key`."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove `key`; removing a missing key succeeds."""
        ...

    def list_keys(self, bucket: str, prefix: str = "", limit: int = 1000) -> list[str]:
        """Keys starting with `prefix`, in byte order, at most `limit` of them."""
        ...


class SQLiteKVStore(SQLiteStore):
    """`KVStore` over the host database. Raises `InvalidArgument`, `TooLarge`, `StoreUnavailable`."""

    def __init__(self, db: AnyDatabase, max_key_bytes: int = 512, max_value_bytes: int = 1 << 20) -> None:
        super().__init__(db, "kv", MIGRATIONS)
        self.max_key_bytes = max_key_bytes
        self.max_value_bytes = max_value_bytes

    @translate_sqlite_errors
    def get(self, bucket: str, key: str) -> bytes | None:
        self._check(bucket, key)
        row = self._db.db.execute(
            "SELECT value FROM kv_entries WHERE bucket = ? AND key = ?", [bucket, key]
        ).fetchone()
        return None if row is None else bytes(row[0])

    @translate_sqlite_errors
    def set(self, bucket: str, key: str, value: bytes) -> None:
        self._check(bucket, key)
        data = bytes_within("kv value", value, self.max_value_bytes)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO kv_entries (bucket, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                [bucket, key, data, time.time()],
            )

    @translate_sqlite_errors
    def delete(self, bucket: str, key: str) -> None:
        self._check(bucket, key)
        with self._db.transaction() as db:
            db.execute("DELETE FROM kv_entries WHERE bucket = ? AND key = ?", [bucket, key])

    @translate_sqlite_errors
    def list_keys(self, bucket: str, prefix: str = "", limit: int = 1000) -> list[str]:
        require_resource_name("kv bucket", bucket)
        int_in_range("limit", limit, 0, 2**32 - 1)
        utf8_within("kv key prefix", prefix, self.max_key_bytes, allow_empty=True)
        sql = "SELECT key FROM kv_entries WHERE bucket = ? AND key >= ?"
        params: list[object] = [bucket, prefix]
        upper = prefix_successor(prefix)
        if upper is not None:
            sql += " AND key < ?"
            params.append(upper)
        sql += " ORDER BY key LIMIT ?"
        params.append(min(limit, MAX_LIST_LIMIT))
        return [row[0] for row in self._db.db.execute(sql, params)]

    def _check(self, bucket: str, key: str) -> None:
        require_resource_name("kv bucket", bucket)
        utf8_within("kv key", key, self.max_key_bytes)


def prefix_successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix` (None: no bound).

    Bump the last code point that can be bumped and drop what follows it. Surrogates cannot be
    stored as UTF-8, so U+D7FF is followed by U+E000 (they are adjacent in byte order too).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop())
        if code < 0x10FFFF:
            chars.append(chr(0xE000 if code == 0xD7FF else code + 1))
            return "".join(chars)
    return None
