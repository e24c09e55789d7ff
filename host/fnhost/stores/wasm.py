"""Deployed wasm binaries, content-addressed by sha256: files in the data dir, or rows in the shared database.

A node of a cluster holds no binary it cannot fetch again: with PostgreSQL the binaries live in the
database (`DatabaseWasmStore`) and a node that has never seen a version reads it by sha256, then
keeps only its compiled artifact. The embedded default keeps files (`FileWasmStore`). Both are the
one content-addressed store of `fnhost.stores.content` (space `wasm`), which blob objects use too:
the digest is checked on the way in and on the way out, so a binary damaged at rest is refused,
never run.
"""

from __future__ import annotations

from pathlib import Path

from ._common import sql_migration
from .content import ContentStore, DatabaseContentStore, FileContentStore
from .database import AnyDatabase
from .errors import CorruptBlob

WasmStore = ContentStore
SPACE = "wasm"

MIGRATIONS = [
    sql_migration("CREATE TABLE wasm_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, stored_at REAL NOT NULL)"),
    # Binaries of before the content store move into it as one chunk each (it reads chunks of any size).
    sql_migration(
        f"INSERT INTO content_objects (space, sha256, size, stored_at)"
        f" SELECT '{SPACE}', sha256, length(data), stored_at FROM wasm_blobs",
        f"INSERT INTO content_chunks (space, object, pos, data) SELECT '{SPACE}', sha256, 0, data FROM wasm_blobs",
        "DROP TABLE wasm_blobs",
    ),
]


def FileWasmStore(directory: Path) -> FileContentStore:
    """`<dir>/<sha256>.wasm`, written atomically."""
    return FileContentStore(Path(directory), ".wasm", fsync=False)


def DatabaseWasmStore(db: AnyDatabase) -> DatabaseContentStore:
    """Rows of the shared database (either backend)."""
    store = DatabaseContentStore(db, SPACE)  # its tables first: the second migration fills them
    db.migrate("wasm_blobs", MIGRATIONS)
    return store


__all__ = ["CorruptBlob", "DatabaseWasmStore", "FileWasmStore", "WasmStore"]
