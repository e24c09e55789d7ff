"""Shared by every store: the SQLite base class, argument checks, SQL migrations, error translation, ids."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from .._fs import disk_full
from ..namespaces import QUALIFIED_RESOURCE_RE
from .database import SQLITE, AnyDatabase, Migration, PostgresDatabase, executemany
from .errors import InvalidArgument, StoreUnavailable, TooLarge

P = ParamSpec("P")
R = TypeVar("R")


def translate_database_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a backend's "cannot now" errors into a retryable `StoreUnavailable`, and a full disk into
    `InsufficientStorage` naming the database (SQLite rolled the transaction back).

    SQLite: `OperationalError` (locked, I/O error). PostgreSQL: a lost connection (the thread's
    connection is dropped, so the next call reconnects by itself), a deadlock or a serialization
    failure.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                db = getattr(args[0] if args else None, "_db", None)
                raise disk_full(getattr(db, "path", "the database"), e) from e
            raise StoreUnavailable(
                f"{method.__qualname__}: the database is unavailable ({e}); retry the call"
            ) from e
        except Exception as e:
            if type(e).__module__.split(".")[0] != "psycopg":
                raise
            import psycopg

            if isinstance(e, psycopg.DataError):
                raise InvalidArgument(f"{method.__qualname__}: the database refused a value ({e})") from e
            if not isinstance(e, psycopg.OperationalError):
                raise
            db = getattr(args[0], "_db", None) if args else None
            if isinstance(db, PostgresDatabase):
                db.discard_if_broken()
            raise StoreUnavailable(
                f"{method.__qualname__}: the database is unavailable ({str(e).strip()}); retry the call"
            ) from e

    return wrapper


class SQLiteStore:
    """Base of the stores (on SQLite or PostgreSQL: see `database`): holds the database, applies its migrations.

    The repr shows only the database path, never a key or a stored value.
    """

    def __init__(self, db: AnyDatabase, component: str, migrations: Sequence[Migration]) -> None:
        self._db = db
        db.migrate(component, migrations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db!r})"

    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction on this store's database: the writes of other stores on the same
        database inside it join it (they commit or roll back together)."""
        return self._db.transaction()


def sql_migration(*statements: str) -> Migration:
    """A migration that runs `statements` in order (inside the migration's transaction).

    `executescript` is not used on purpose: it commits first, which would break the transaction.
    """

    def apply(db: Any) -> None:
        dialect = getattr(db, "dialect", SQLITE)
        for statement in statements:
            db.execute(dialect.ddl(statement))

    return apply


def epoch_of_iso(text: str | None) -> float | None:
    """An ISO-8601 UTC time as the control plane wrote it before REAL timestamps (`...T22:35:03.648137Z`),
    in epoch seconds (None stays None). For the migrations that convert such columns."""
    if text is None:
        return None
    return datetime.fromisoformat(text).timestamp()


def rebuild_table(
    db: Any, table: str, columns_ddl: str, columns: str, convert: Callable[[tuple[Any, ...]], Sequence[Any]]
) -> None:
    """Inside a migration: recreate `table` with `columns_ddl` (SQLite spelling), each row of `columns`
    passed through `convert`. How a column changes type on both backends: SQLite cannot alter a column,
    and its TEXT affinity would store a REAL written into the old column as text again."""
    dialect = getattr(db, "dialect", SQLITE)
    rows = [convert(tuple(row)) for row in db.execute(f"SELECT {columns} FROM {table}").fetchall()]
    db.execute(dialect.ddl(f"CREATE TABLE {table}_rebuilt ({columns_ddl})"))
    marks = ", ".join("?" * len(columns.split(",")))
    executemany(db, f"INSERT INTO {table}_rebuilt ({columns}) VALUES ({marks})", rows)
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")


def require_resource_name(kind: str, name: object) -> str:
    """Check a bucket, queue or secret store name: a plain name (namespace `default`) or
    `namespace/name`, as `fnhost.namespaces` makes them. The one seam where stores meet namespaces."""
    if not isinstance(name, str) or not QUALIFIED_RESOURCE_RE.fullmatch(name):
        raise InvalidArgument(
            f"{kind} name {name!r} is not valid: use 1..128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def require_pattern(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidArgument(f"{kind} {value!r} is not valid: {rule}")
    return value


def utf8_within(kind: str, text: object, limit: int, *, allow_empty: bool = False) -> bytes:
    """`text` encoded as UTF-8, checked to be non-empty (unless allowed) and at most `limit` bytes.

    The text itself never appears in the messages: it may be a secret.
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"{kind} must be a string, got {type(text).__name__}")
    if not text and not allow_empty:
        raise InvalidArgument(f"{kind} must not be empty")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{kind} is not valid Unicode text (it contains a lone surrogate)") from None
    if len(data) > limit:
        raise TooLarge(f"{kind} is {len(data)} bytes, over the limit of {limit} bytes")
    return data


def bytes_within(kind: str, value: object, limit: int) -> bytes:
    """`value` as `bytes`, checked to be at most `limit` bytes long."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{kind} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) > limit:
        raise TooLarge(f"{kind} is {len(data)} bytes, over the limit of {limit} bytes")
    return data


def int_in_range(kind: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{kind} must be an integer in {low}..{high}, got {value!r}")
    return value


class _SortableIds:
    """Time-ordered ids: 48-bit milliseconds, a 16-bit per-process sequence, 64 random bits (32 hex).

    Ids from one process sort in creation order; ids from different processes sort by millisecond.
    The random bits come from `os.urandom`, drawn for `RANDOM_BATCH` ids at a time (one system call
    instead of one per id, on every invocation's path); a forked child draws its own.
    """

    RANDOM_BATCH = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0
        self._prefix = f"{0:012x}"  # `_last_ms` in hex
        self._random = ""  # hex digits drawn and not used yet, from `_next`
        self._next = 0
        os.register_at_fork(after_in_child=self._forget_random)

    def _forget_random(self) -> None:
        self._random, self._next = "", 0  # the parent's next ids would be the child's too

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._sequence += 1
                if self._sequence > 0xFFFF:  # 65536 ids in one millisecond: borrow the next one
                    ms += 1
                    self._sequence = 0
            else:
                self._sequence = 0
            if ms != self._last_ms:
                self._prefix = f"{ms:012x}"
            self._last_ms = ms
            if self._next >= len(self._random):
                self._random, self._next = os.urandom(8 * self.RANDOM_BATCH).hex(), 0
            start = self._next
            self._next = start + 16
            return f"{self._prefix}{self._sequence:04x}{self._random[start : start + 16]}"


new_sortable_id = _SortableIds()
"""Return a new unique id (32 lower-case hex characters) that sorts by creation time."""
