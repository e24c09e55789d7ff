"""Deployed wasm binaries, content-addressed by sha256: files in the data dir, or rows in the shared database.

A node of a cluster holds no binary it cannot fetch again: with PostgreSQL the binaries live in the
database (`DatabaseWasmStore`) and a node that has never seen a version reads it by sha256, then
keeps only its compiled artifact. The embedded default keeps files (`FileWasmStore`). Both check
the digest on the way in and on the way out, so a binary damaged at rest is refused, never run.
An object-storage backend can be added behind the same three calls.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from .._fs import atomic_write
from ..names import SHA256
from ._common import SQLiteStore, sql_migration, translate_sqlite_errors
from .database import AnyDatabase
from .errors import CorruptBlob, InvalidArgument

MIGRATIONS = [
    sql_migration("CREATE TABLE wasm_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, stored_at REAL NOT NULL)"),
]


class WasmStore(Protocol):
    def put(self, sha256: str, data: bytes) -> None:
        """Store `data` under its sha256 (idempotent)."""
        ...

    def get(self, sha256: str) -> bytes | None:
        """The binary, or None if it is not stored. Raises `CorruptBlob` if it was damaged at rest."""
        ...

    def header(self, sha256: str) -> bytes | None:
        """Its first 8 bytes (core module or component), without reading the whole binary."""
        ...

    def size(self, sha256: str) -> int | None:
        """Its length in bytes, without reading it."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove it; removing a missing binary succeeds."""
        ...


def _checked(sha256: str, data: bytes) -> bytes:
    if not SHA256.matches(sha256):
        raise InvalidArgument(f"wasm digest {sha256!r} is not 64 lower-case hex characters")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidArgument(f"the binary's sha256 is not {sha256}")
    return data


def _verified(sha256: str, data: bytes, where: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CorruptBlob(
            f"the stored binary {sha256} ({where}) no longer matches its sha256: it was damaged at rest; "
            "deploy the function again to store it anew"
        )
    return data


class FileWasmStore:
    """`<dir>/<sha256>.wasm`, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileWasmStore({str(self.dir)!r})"

    def _path(self, sha256: str) -> Path:
        if not SHA256.matches(sha256):
            raise InvalidArgument(f"wasm digest {sha256!r} is not 64 lower-case hex characters")
        return self.dir / f"{sha256}.wasm"

    def put(self, sha256: str, data: bytes) -> None:
        path = self._path(sha256)
        if not path.exists():
            atomic_write(path, _checked(sha256, data))

    def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return _verified(sha256, data, str(path))

    def header(self, sha256: str) -> bytes | None:
        try:
            with open(self._path(sha256), "rb") as f:
                return f.read(8)
        except FileNotFoundError:
            return None

    def size(self, sha256: str) -> int | None:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)


class DatabaseWasmStore(SQLiteStore):
    """Rows of the shared database (either backend): what every node of a cluster reads."""

    def __init__(self, db: AnyDatabase) -> None:
        super().__init__(db, "wasm_blobs", MIGRATIONS)

    @translate_sqlite_errors
    def put(self, sha256: str, data: bytes) -> None:
        _checked(sha256, data)
        with self._db.transaction() as db:
            db.execute(
                f"INSERT INTO wasm_blobs (sha256, data, stored_at) VALUES (?, ?, {self._db.dialect.now})"
                " ON CONFLICT (sha256) DO NOTHING",
                [sha256, data],
            )

    @translate_sqlite_errors
    def get(self, sha256: str) -> bytes | None:
        row = self._db.db.execute("SELECT data FROM wasm_blobs WHERE sha256 = ?", [sha256]).fetchone()
        return None if row is None else _verified(sha256, bytes(row[0]), "database row")

    @translate_sqlite_errors
    def header(self, sha256: str) -> bytes | None:
        row = self._db.db.execute("SELECT substr(data, 1, 8) FROM wasm_blobs WHERE sha256 = ?", [sha256]).fetchone()
        return None if row is None else bytes(row[0])

    @translate_sqlite_errors
    def size(self, sha256: str) -> int | None:
        row = self._db.db.execute("SELECT length(data) FROM wasm_blobs WHERE sha256 = ?", [sha256]).fetchone()
        return None if row is None else int(row[0])

    @translate_sqlite_errors
    def delete(self, sha256: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM wasm_blobs WHERE sha256 = ?", [sha256])
