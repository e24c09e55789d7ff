"""Key-value storage in named buckets (the store behind the `kv` capability).

Keys are UTF-8 strings listed in byte order. SQLite's default BINARY collation compares TEXT with
`memcmp` over its UTF-8 bytes, and UTF-8 byte order equals code point order, so a prefix listing is
the range `prefix <= key < successor(prefix)` on the primary key: an index seek, with no LIKE
pattern for '%' or '_' to be misread.

Expiry: a key set with a TTL has `expires_at` (the database's clock, `Dialect.now`, so every node
agrees); every read treats an expired row as absent at once, and `purge_expired` deletes such rows
in bounded batches (the kv capability calls it in the background).

Atomicity on both backends: `compare_and_swap` is one conditional statement (an `UPDATE ... WHERE
value = ?`, or an insert whose conflict branch only replaces an expired row); `increment` reads and
writes inside one transaction holding the row's lock (`FOR UPDATE` on PostgreSQL, SQLite's writer
lock), after an `INSERT ... ON CONFLICT DO NOTHING` that makes the row exist so that there is a row
to lock. `set_many` is one transaction: all entries or none.
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
    translate_database_errors,
    utf8_within,
)
from .database import AnyDatabase, executemany
from .errors import InvalidArgument, TooLarge

MAX_LIST_LIMIT = 10_000
"""The most keys one `list_keys` call returns, whatever `limit` asks for."""

MAX_BATCH = 1000
"""The most keys one `get_many` or `set_many` call takes."""
MAX_TTL_MS = 10 * 365 * 86_400_000
"""The longest TTL (ten years); longer ones are `InvalidArgument`, not silently capped."""

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
    sql_migration(
        "ALTER TABLE kv_entries ADD COLUMN expires_at REAL",
        "CREATE INDEX kv_entries_expiry ON kv_entries (expires_at) WHERE expires_at IS NOT NULL",
    ),
]
INT64 = (-(2**63), 2**63 - 1)


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

    def set_with_ttl(self, bucket: str, key: str, value: bytes, ttl_ms: int) -> None:
        """Create or replace `key`, absent for every reader once `ttl_ms` milliseconds have passed."""
        ...

    def increment(self, bucket: str, key: str, delta: int) -> int:
        """Add `delta` to the integer stored (as decimal text) under `key`, 0 if absent; the new value."""
        ...

    def compare_and_swap(self, bucket: str, key: str, expected: bytes | None, new: bytes) -> bool:
        """Set `key` to `new` only if its value is `expected` (None: only if absent); whether it did."""
        ...

    def get_many(self, bucket: str, keys: list[str]) -> list[bytes | None]:
        """The value of each key (None where not set), in the order asked."""
        ...

    def set_many(self, bucket: str, entries: list[tuple[str, bytes]]) -> None:
        """Create or replace every entry, in one transaction."""
        ...

    def purge_expired(self, limit: int = 1000) -> int:
        """Delete up to `limit` expired rows; how many it deleted."""
        ...


class SQLiteKVStore(SQLiteStore):
    """`KVStore` over the host database. Raises `InvalidArgument`, `TooLarge`, `StoreUnavailable`."""

    def __init__(self, db: AnyDatabase, max_key_bytes: int = 512, max_value_bytes: int = 1 << 20) -> None:
        super().__init__(db, "kv", MIGRATIONS)
        self.max_key_bytes = max_key_bytes
        self.max_value_bytes = max_value_bytes

    def _live(self) -> str:
        """The condition of a row that has not expired (on the database's clock)."""
        return f"(expires_at IS NULL OR expires_at > {self._db.dialect.now})"

    @translate_database_errors
    def get(self, bucket: str, key: str) -> bytes | None:
        self._check(bucket, key)
        row = self._db.db.execute(
            f"SELECT value FROM kv_entries WHERE bucket = ? AND key = ? AND {self._live()}", [bucket, key]
        ).fetchone()
        return None if row is None else bytes(row[0])

    @translate_database_errors
    def set(self, bucket: str, key: str, value: bytes) -> None:
        self._set(bucket, key, value, None)

    @translate_database_errors
    def set_with_ttl(self, bucket: str, key: str, value: bytes, ttl_ms: int) -> None:
        self._set(bucket, key, value, int_in_range("ttl_ms", ttl_ms, 1, MAX_TTL_MS))

    _UPSERT = (
        "INSERT INTO kv_entries (bucket, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, {expiry}) "
        "ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at, expires_at = excluded.expires_at"
    )

    def _set(self, bucket: str, key: str, value: bytes, ttl_ms: int | None) -> None:
        self._check(bucket, key)
        data = bytes_within("kv value", value, self.max_value_bytes)
        expiry = "NULL" if ttl_ms is None else f"{self._db.dialect.now} + ?"
        params: list[object] = [bucket, key, data, time.time()]
        if ttl_ms is not None:
            params.append(ttl_ms / 1000)
        with self._db.transaction() as db:
            db.execute(self._UPSERT.format(expiry=expiry), params)

    @translate_database_errors
    def increment(self, bucket: str, key: str, delta: int) -> int:
        self._check(bucket, key)
        int_in_range("increment delta", delta, *INT64)
        dialect = self._db.dialect
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO kv_entries (bucket, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, NULL) "
                "ON CONFLICT (bucket, key) DO NOTHING",
                [bucket, key, b"0", time.time()],
            )
            value, live = db.execute(
                f"SELECT value, {self._live()} FROM kv_entries WHERE bucket = ? AND key = ?{dialect.for_update}",
                [bucket, key],
            ).fetchone()
            current = _counter(bytes(value)) if live else 0
            total = current + delta
            if not INT64[0] <= total <= INT64[1]:
                raise InvalidArgument(f"kv increment of '{key}' by {delta} overflows a signed 64-bit integer")
            db.execute(
                "UPDATE kv_entries SET value = ?, updated_at = ?, "
                "expires_at = CASE WHEN ? THEN expires_at ELSE NULL END WHERE bucket = ? AND key = ?",
                [str(total).encode(), time.time(), bool(live), bucket, key],
            )
        return total

    @translate_database_errors
    def compare_and_swap(self, bucket: str, key: str, expected: bytes | None, new: bytes) -> bool:
        self._check(bucket, key)
        data = bytes_within("kv value", new, self.max_value_bytes)
        with self._db.transaction() as db:
            if expected is None:  # only if absent: insert, or replace a row that has expired
                row = db.execute(
                    "INSERT INTO kv_entries (bucket, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, NULL) "
                    "ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at, expires_at = NULL "
                    f"WHERE kv_entries.expires_at IS NOT NULL AND kv_entries.expires_at <= {self._db.dialect.now} "
                    "RETURNING 1",
                    [bucket, key, data, time.time()],
                ).fetchone()
                return row is not None
            old = bytes_within("kv expected value", expected, self.max_value_bytes)
            cursor = db.execute(
                "UPDATE kv_entries SET value = ?, updated_at = ?, expires_at = NULL "
                f"WHERE bucket = ? AND key = ? AND value = ? AND {self._live()}",
                [data, time.time(), bucket, key, old],
            )
            return bool(cursor.rowcount == 1)

    @translate_database_errors
    def get_many(self, bucket: str, keys: list[str]) -> list[bytes | None]:
        self._check_batch(bucket, keys)
        if not keys:
            return []
        unique = list(dict.fromkeys(keys))
        marks = ", ".join("?" * len(unique))
        rows = self._db.db.execute(
            f"SELECT key, value FROM kv_entries WHERE bucket = ? AND key IN ({marks}) AND {self._live()}",
            [bucket, *unique],
        ).fetchall()
        found = {k: bytes(v) for k, v in rows}
        return [found.get(k) for k in keys]

    @translate_database_errors
    def set_many(self, bucket: str, entries: list[tuple[str, bytes]]) -> None:
        self._check_batch(bucket, [k for k, _ in entries])
        now = time.time()
        rows = [[bucket, k, bytes_within("kv value", v, self.max_value_bytes), now] for k, v in entries]
        rows.sort(key=lambda row: str(row[1]))  # one lock order for concurrent batches (stable: the last entry wins)
        if rows:
            with self._db.transaction() as db:
                executemany(db, self._UPSERT.format(expiry="NULL"), rows)

    @translate_database_errors
    def purge_expired(self, limit: int = 1000) -> int:
        int_in_range("limit", limit, 1, 1_000_000)
        with self._db.transaction() as db:
            cursor = db.execute(
                "DELETE FROM kv_entries WHERE (bucket, key) IN (SELECT bucket, key FROM kv_entries "
                f"WHERE expires_at IS NOT NULL AND expires_at <= {self._db.dialect.now} LIMIT ?)",
                [limit],
            )
            return int(cursor.rowcount)

    @translate_database_errors
    def delete(self, bucket: str, key: str) -> None:
        self._check(bucket, key)
        with self._db.transaction() as db:
            db.execute("DELETE FROM kv_entries WHERE bucket = ? AND key = ?", [bucket, key])

    @translate_database_errors
    def list_keys(self, bucket: str, prefix: str = "", limit: int = 1000) -> list[str]:
        require_resource_name("kv bucket", bucket)
        int_in_range("limit", limit, 0, 2**32 - 1)
        utf8_within("kv key prefix", prefix, self.max_key_bytes, allow_empty=True)
        sql = f"SELECT key FROM kv_entries WHERE bucket = ? AND key >= ? AND {self._live()}"
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

    def _check_batch(self, bucket: str, keys: list[str]) -> None:
        require_resource_name("kv bucket", bucket)
        if len(keys) > MAX_BATCH:
            raise TooLarge(f"kv batch of {len(keys)} keys is over the limit of {MAX_BATCH} keys")
        for key in keys:
            utf8_within("kv key", key, self.max_key_bytes)


def _counter(value: bytes) -> int:
    """The integer a counter key holds: decimal ASCII, as `increment` writes it."""
    text = value.decode("ascii", "replace").strip()
    if not text or len(text) > 20 or not text.lstrip("-").isdigit():
        raise InvalidArgument("kv increment: the key holds a value that is not a decimal integer")
    return int(text)


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
