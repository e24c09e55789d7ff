"""Content-addressed storage of byte streams, by sha256: files in a directory, or chunked rows in the
shared database. One implementation serves every kind of content (deployed wasm, blob objects); each
user has its own space (its own directory, or its own `space` value in the rows), so collecting one
space's garbage never touches another's.

Writing streams: `begin()` gives an `Upload` that takes chunks (hashing and counting them as they
come) and keeps them aside — a temp file in the same directory, or rows under a temporary upload id —
until `commit(upload)` files them under their sha256: a rename, or one `INSERT ... SELECT`. A reader
never sees part of an object; an upload that is aborted, or whose process dies, leaves nothing
visible (`sweep_uploads` removes what a dead process left behind). Files are fsynced (the file, then
its directory after the rename) before `commit` returns.

Reading streams too: `open(sha256)` gives a `ContentReader` that reads a range at a time. Whole-object
reads (`get`) check the digest, so content damaged at rest is refused, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Protocol

from .._fs import DISK_FULL_ERRNOS, disk_full
from ..names import SHA256
from ._common import SQLiteStore, new_sortable_id, sql_migration, translate_database_errors
from .database import AnyDatabase
from .errors import CorruptBlob, InvalidArgument

CHUNK_BYTES = 1 << 20
"""The size of one stored chunk row (the last one of an object may be shorter)."""
STALE_UPLOAD_S = 24 * 3600.0
"""An upload not committed after this long belonged to a process that died: `sweep_uploads` drops it."""

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE content_objects ("
        " space TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, stored_at REAL NOT NULL,"
        " PRIMARY KEY (space, sha256))",
        "CREATE TABLE content_chunks ("
        " space TEXT NOT NULL, object TEXT NOT NULL, pos INTEGER NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (space, object, pos))",
        "CREATE TABLE content_uploads (space TEXT NOT NULL, id TEXT NOT NULL, started_at REAL NOT NULL,"
        " PRIMARY KEY (space, id))",
    ),
]


def require_digest(sha256: str) -> str:
    if not isinstance(sha256, str) or not SHA256.matches(sha256):
        raise InvalidArgument(f"content digest {sha256!r} is not 64 lower-case hex characters")
    return sha256


class Upload:
    """Content being written: `write` chunks, then the store's `commit`, or `abort`."""

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.size = 0
        self.done = False

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()

    def write(self, data: bytes) -> None:
        if self.done:
            raise InvalidArgument("the upload is already finished or aborted")
        self.hasher.update(data)
        self.size += len(data)
        self._write(data)

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Drop what was written (idempotent)."""
        if not self.done:
            self.done = True
            self._abort()

    def _abort(self) -> None:
        raise NotImplementedError


class ContentReader(Protocol):
    size: int

    def read_at(self, offset: int, max_bytes: int) -> bytes:
        """Up to `max_bytes` from `offset` (fewer only at the end; b"" past it)."""
        ...

    def close(self) -> None: ...


class ContentStore(Protocol):
    """Byte streams by sha256 (see the module docstring)."""

    def begin(self) -> Upload: ...

    def commit(self, upload: Upload) -> str:
        """File `upload` under its sha256 (idempotent for equal content); return the digest."""
        ...

    def open(self, sha256: str) -> ContentReader | None: ...

    def put(self, sha256: str, data: bytes) -> None:
        """Store `data`, which must hash to `sha256` (idempotent)."""
        ...

    def get(self, sha256: str) -> bytes | None:
        """The whole content, digest checked (`CorruptBlob` if damaged), or None."""
        ...

    def header(self, sha256: str) -> bytes | None: ...

    def size(self, sha256: str) -> int | None: ...

    def delete(self, sha256: str) -> None: ...

    def sweep_uploads(self, older_than_s: float = STALE_UPLOAD_S) -> int: ...


def _checked(sha256: str, data: bytes) -> bytes:
    require_digest(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidArgument(f"the content's sha256 is not {sha256}")
    return data


def damaged(sha256: str, where: str) -> CorruptBlob:
    """The error for stored content that no longer hashes to its digest."""
    return CorruptBlob(
        f"the stored content {sha256} ({where}) no longer matches its sha256: it was damaged at rest; "
        "deploy the function again (for a blob object: put it again) to store it anew"
    )


def _verified(sha256: str, data: bytes, where: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise damaged(sha256, where)
    return data


def _store_whole(store: ContentStore, sha256: str, data: bytes) -> None:
    upload = store.begin()
    try:
        upload.write(_checked(sha256, data))
        store.commit(upload)
    except BaseException:
        upload.abort()
        raise


class _FileUpload(Upload):
    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        except OSError as e:
            raise _os_error(directory, e) from e
        self.path = Path(tmp)
        self.file = os.fdopen(fd, "wb")

    def _write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as e:
            self.abort()
            raise _os_error(self.directory, e) from e

    def _abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self.path.unlink(missing_ok=True)


def _os_error(where: Path, e: OSError) -> Exception:
    return disk_full(where, e.strerror) if e.errno in DISK_FULL_ERRNOS else e


class _FileReader:
    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self.file.fileno()).st_size

    def read_at(self, offset: int, max_bytes: int) -> bytes:
        return os.pread(self.file.fileno(), max(0, max_bytes), offset)

    def close(self) -> None:
        self.file.close()


class FileContentStore:
    """`<dir>/<sha256><suffix>`; uploads are `<dir>/.tmp-*` until renamed."""

    def __init__(self, directory: Path, suffix: str = "", *, fsync: bool = True) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"FileContentStore({str(self.dir)!r})"

    def _path(self, sha256: str) -> Path:
        return self.dir / f"{require_digest(sha256)}{self.suffix}"

    def begin(self) -> Upload:
        return _FileUpload(self.dir)

    def commit(self, upload: Upload) -> str:
        assert isinstance(upload, _FileUpload)
        if upload.done:
            raise InvalidArgument("the upload is already finished or aborted")
        sha256 = upload.sha256
        try:
            upload.file.flush()
            if self.fsync:
                os.fsync(upload.file.fileno())
            upload.file.close()
            os.replace(upload.path, self._path(sha256))  # equal content replaces equal content
            if self.fsync:
                dir_fd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as e:
            upload.abort()
            raise _os_error(self.dir, e) from e
        upload.done = True
        return sha256

    def open(self, sha256: str) -> ContentReader | None:
        try:
            return _FileReader(self._path(sha256))
        except FileNotFoundError:
            return None

    def put(self, sha256: str, data: bytes) -> None:
        if not self._path(sha256).exists():
            _store_whole(self, sha256, data)

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

    def sweep_uploads(self, older_than_s: float = STALE_UPLOAD_S) -> int:
        cutoff, removed = time.time() - older_than_s, 0
        for tmp in self.dir.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed


class _RowUpload(Upload):
    """Chunks as rows under `upload:<id>`, each `CHUNK_BYTES` long, inserted as they fill."""

    def __init__(self, store: DatabaseContentStore) -> None:
        super().__init__()
        self.store = store
        self.id = new_sortable_id()
        self.object = f"upload:{self.id}"
        self.buffer = bytearray()
        self.pos = 0
        store._start_upload(self.id)

    def _write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= CHUNK_BYTES:
            self._flush(CHUNK_BYTES)

    def _flush(self, n: int) -> None:
        chunk, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        try:
            self.store._insert_chunk(self.object, self.pos, chunk)
        except BaseException:
            self.abort()
            raise
        self.pos += len(chunk)

    def _abort(self) -> None:
        self.buffer = bytearray()
        with contextlib.suppress(Exception):  # the database is away: sweep_uploads removes the rows later
            self.store._drop_upload(self.id)


class _RowReader:
    def __init__(self, store: DatabaseContentStore, sha256: str, size: int) -> None:
        self.store, self.sha256, self.size = store, sha256, size

    def read_at(self, offset: int, max_bytes: int) -> bytes:
        return self.store._read_range(self.sha256, offset, max_bytes)

    def close(self) -> None:
        pass


class DatabaseContentStore(SQLiteStore):
    """Rows of the shared database (either backend), `CHUNK_BYTES` per row: what every node reads."""

    def __init__(self, db: AnyDatabase, space: str) -> None:
        super().__init__(db, "content", MIGRATIONS)
        self.space = space

    def __repr__(self) -> str:
        return f"DatabaseContentStore({self._db!r}, {self.space!r})"

    @translate_database_errors
    def _start_upload(self, upload_id: str) -> None:
        with self._db.transaction() as db:
            db.execute(
                f"INSERT INTO content_uploads (space, id, started_at) VALUES (?, ?, {self._db.dialect.now})",
                [self.space, upload_id],
            )

    @translate_database_errors
    def _insert_chunk(self, obj: str, pos: int, data: bytes) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO content_chunks (space, object, pos, data) VALUES (?, ?, ?, ?)",
                [self.space, obj, pos, data],
            )

    @translate_database_errors
    def _drop_upload(self, upload_id: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM content_chunks WHERE space = ? AND object = ?", [self.space, f"upload:{upload_id}"])
            db.execute("DELETE FROM content_uploads WHERE space = ? AND id = ?", [self.space, upload_id])

    def begin(self) -> Upload:
        return _RowUpload(self)

    @translate_database_errors
    def commit(self, upload: Upload) -> str:
        """Inside the caller's transaction when there is one (the blob store commits content and
        metadata together)."""
        assert isinstance(upload, _RowUpload)
        if upload.done:
            raise InvalidArgument("the upload is already finished or aborted")
        if upload.buffer or upload.pos == 0:
            upload._flush(len(upload.buffer))  # the last, short chunk (or the one empty chunk of b"")
        sha256, space = upload.sha256, self.space
        with self._db.transaction() as db:
            new = db.execute(
                f"INSERT INTO content_objects (space, sha256, size, stored_at) VALUES (?, ?, ?, {self._db.dialect.now})"
                " ON CONFLICT (space, sha256) DO NOTHING RETURNING sha256",
                [space, sha256, upload.size],
            ).fetchone()
            if new is not None:
                db.execute(
                    "INSERT INTO content_chunks (space, object, pos, data)"
                    " SELECT space, ?, pos, data FROM content_chunks WHERE space = ? AND object = ?",
                    [sha256, space, upload.object],
                )
            db.execute("DELETE FROM content_chunks WHERE space = ? AND object = ?", [space, upload.object])
            db.execute("DELETE FROM content_uploads WHERE space = ? AND id = ?", [space, upload.id])
        upload.done = True
        return sha256

    def open(self, sha256: str) -> ContentReader | None:
        size = self.size(sha256)
        return None if size is None else _RowReader(self, sha256, size)

    @translate_database_errors
    def _read_range(self, sha256: str, offset: int, max_bytes: int) -> bytes:
        if max_bytes <= 0:
            return b""
        first = "SELECT max(pos) FROM content_chunks WHERE space = ? AND object = ? AND pos <= ?"
        rows = self._db.db.execute(
            f"SELECT pos, data FROM content_chunks WHERE space = ? AND object = ? AND pos >= ({first}) AND pos < ?"
            " ORDER BY pos",
            [self.space, sha256, self.space, sha256, offset, offset + max_bytes],
        ).fetchall()
        out = bytearray()
        for pos, data in rows:
            data = bytes(data)
            lo, hi = max(offset, pos), min(offset + max_bytes, pos + len(data))
            if lo < hi:
                out += data[lo - pos : hi - pos]
        return bytes(out)

    def put(self, sha256: str, data: bytes) -> None:
        if self.size(sha256) is None:
            _store_whole(self, sha256, data)

    @translate_database_errors
    def get(self, sha256: str) -> bytes | None:
        require_digest(sha256)
        if self.size(sha256) is None:
            return None
        rows = self._db.db.execute(
            "SELECT data FROM content_chunks WHERE space = ? AND object = ? ORDER BY pos", [self.space, sha256]
        ).fetchall()
        return _verified(sha256, b"".join(bytes(r[0]) for r in rows), "database rows")

    @translate_database_errors
    def header(self, sha256: str) -> bytes | None:
        if self.size(sha256) is None:
            return None
        return self._read_range(sha256, 0, 8)

    @translate_database_errors
    def size(self, sha256: str) -> int | None:
        row = self._db.db.execute(
            "SELECT size FROM content_objects WHERE space = ? AND sha256 = ?", [self.space, require_digest(sha256)]
        ).fetchone()
        return None if row is None else int(row[0])

    @translate_database_errors
    def delete(self, sha256: str) -> None:
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM content_chunks WHERE space = ? AND object = ?", [self.space, require_digest(sha256)]
            )
            db.execute("DELETE FROM content_objects WHERE space = ? AND sha256 = ?", [self.space, sha256])

    @translate_database_errors
    def sweep_uploads(self, older_than_s: float = STALE_UPLOAD_S) -> int:
        rows = self._db.db.execute(
            f"SELECT id FROM content_uploads WHERE space = ? AND started_at < {self._db.dialect.now} - ?",
            [self.space, older_than_s],
        ).fetchall()
        for (upload_id,) in rows:
            self._drop_upload(upload_id)
        return len(rows)
