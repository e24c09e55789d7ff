"""Blob objects in named buckets (the store behind the `blobs` capability, the API and the CLI).

`BlobStore` is the one interface: objects stream in (`writer` → `BlobWriter.write`/`finish`/`abort`)
and out (`open` → `BlobReader.read`) in chunks, never as one value, and carry their metadata
(`BlobInfo`: size, sha256, content type, created and updated time). Content lives in a
content-addressed `ContentStore` (`fnhost.stores.content`: files under the data dir for the
embedded host, chunked rows of the shared database for PostgreSQL), the metadata in the
`blob_objects` table of the database (either backend).

Invariants:
- An object becomes visible only at `finish`, in one transaction that files its content, writes its
  row and enqueues its trigger events; an aborted or unfinished write (a guest's handle at the end
  of its invocation, a client that disconnects, an upload over the limit) is never visible.
- An object is never larger than `max_object_bytes`: a write that would pass it fails at that chunk
  with `TooLarge` and leaves nothing.
- Content no object references any more (deleted or overwritten) is garbage: its digest goes into
  `blob_garbage` in the same transaction, and `collect_garbage` deletes it after `gc_grace_s` unless
  an object references it again by then. A put of the same content removes the pending entry first
  (PostgreSQL: waiting on the collector's row lock), so the collector never deletes content a
  committed object refers to.
- Object-change events (`BlobSubscription`: a function's `[[triggers.blob]]`) are messages in the
  trigger's own queue, published in the metadata transaction: committed together or not at all.
  A write by a function is not an event for that same function (no self-loops: docs/events.md).
  An event carries the writer's `chain_depth` (`fnhost.chains`); a change whose event would be over
  the queue store's limit is refused whole (`ChainTooDeep`: the transaction rolls back).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ._common import SQLiteStore, require_resource_name, sql_migration, translate_database_errors
from .content import ContentReader, ContentStore, Upload, damaged
from .database import AnyDatabase
from .errors import ChainTooDeep, InvalidArgument, TooLarge
from .kv import prefix_successor
from .queues import QueueStore

MAX_KEY_BYTES = 1024
"""Longest key, in UTF-8 bytes (S3's limit)."""
MAX_CONTENT_TYPE = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_MAX_OBJECT_BYTES = 1 << 30
MAX_LIST_LIMIT = 1000
PUT, DELETE = "put", "delete"
BLOB_SPACE = "blobs"
"""The content store space (database mode) of blob objects' content."""

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE blob_objects ("
        " bucket TEXT NOT NULL, key TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
        " content_type TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,"
        " PRIMARY KEY (bucket, key)) WITHOUT ROWID",
        "CREATE INDEX blob_objects_sha256 ON blob_objects (sha256)",
        "CREATE TABLE blob_garbage (sha256 TEXT PRIMARY KEY, due_at REAL NOT NULL)",
        "CREATE TABLE blob_subscriptions ("
        " function TEXT NOT NULL, queue TEXT NOT NULL, bucket TEXT NOT NULL, prefix TEXT NOT NULL,"
        " events TEXT NOT NULL, PRIMARY KEY (function, queue))",
        "CREATE INDEX blob_subscriptions_bucket ON blob_subscriptions (bucket)",
    ),
]


@dataclass(frozen=True)
class BlobInfo:
    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BlobSubscription:
    """One blob trigger as the store matches it: changes of `bucket` under `prefix` → `queue`."""

    function: str
    queue: str
    bucket: str
    prefix: str
    events: tuple[str, ...]


def require_key(key: object) -> str:
    """A blob key: 1..1024 bytes of NFC-normalized UTF-8 without control characters, no empty,
    `.` or `..` segment and no leading `/` (keys look like paths to people and tools; these are the
    ones that would be read as other paths or as two different keys that look the same)."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument("blob key must be a non-empty string")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("blob key is not valid Unicode text (it contains a lone surrogate)") from None
    if len(raw) > MAX_KEY_BYTES:
        raise TooLarge(f"blob key is {len(raw)} bytes, over the limit of {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise InvalidArgument("blob key contains a control character (NUL, newline...): use printable text")
    if unicodedata.normalize("NFC", key) != key:
        raise InvalidArgument(
            "blob key is not in Unicode normal form NFC (it would look like another key): normalize it first"
        )
    if (
        key.startswith("/")
        or any(part in ("", ".", "..") for part in key.split("/")[:-1])
        or key.split("/")[-1]
        in (
            ".",
            "..",
        )
    ):
        raise InvalidArgument(
            f"blob key {key!r} has an empty, '.' or '..' path segment or starts with '/': use keys like 'in/photo.jpg'"
        )
    return key


def require_content_type(content_type: str | None) -> str:
    if content_type is None or content_type == "":
        return DEFAULT_CONTENT_TYPE
    if (
        not isinstance(content_type, str)
        or len(content_type) > MAX_CONTENT_TYPE
        or not content_type.isascii()
        or not content_type.isprintable()
        or "/" not in content_type
    ):
        raise InvalidArgument(
            f"content type {content_type!r} is not valid: use a MIME type such as 'image/png' (printable ASCII, "
            f"at most {MAX_CONTENT_TYPE} characters)"
        )
    return content_type


class BlobWriter:
    """One object being written; visible only after `finish`."""

    def __init__(
        self,
        store: BlobStore,
        bucket: str,
        key: str,
        content_type: str,
        max_bytes: int,
        writer: str | None,
        chain_depth: int = 0,
    ) -> None:
        self.store, self.bucket, self.key, self.content_type = store, bucket, key, content_type
        self.max_bytes, self.writer, self.chain_depth = max_bytes, writer, chain_depth
        self.upload: Upload = store.content.begin()

    @property
    def size(self) -> int:
        return self.upload.size

    def write(self, data: bytes) -> None:
        if self.upload.size + len(data) > self.max_bytes:
            self.abort()
            raise TooLarge(
                f"blob object {self.key!r} would be over {self.max_bytes} bytes, the object size limit "
                "(--max-blob-bytes); nothing was stored"
            )
        self.upload.write(data)

    def finish(self) -> BlobInfo:
        return self.store._finish(self)

    def abort(self) -> None:
        self.upload.abort()

    @property
    def done(self) -> bool:
        return self.upload.done


class BlobReader:
    """An object's content, read in ranges; `info` is the object as it was when opened (a later put
    does not change what this reader reads: content is immutable under its digest).

    A reader that reads the whole object in order checks it against its sha256 as it goes: the read
    that reaches the end raises `CorruptBlob` instead of returning the last bytes of damaged content,
    so a streamed copy is never complete and wrong. A reader limited to a `byte_range` is not
    checked (only the whole object has a digest)."""

    def __init__(self, info: BlobInfo, content: ContentReader) -> None:
        self.info = info
        self.content = content
        self.offset = 0
        self.end = info.size
        self._hasher: Any = hashlib.sha256()  # None once the reads are not the whole object in order

    def byte_range(self, start: int, end: int) -> None:
        """Read bytes `start` .. `end - 1` only (0 <= start <= end <= size)."""
        if not 0 <= start <= end <= self.info.size:
            raise InvalidArgument(f"byte range {start}..{end} is outside the object's {self.info.size} bytes")
        self.offset, self.end, self._hasher = start, end, None

    def read(self, max_bytes: int) -> bytes:
        want = max(0, min(max_bytes, self.end - self.offset))
        data = self.content.read_at(self.offset, want)
        if len(data) < want:  # the content is shorter than the object's recorded size
            raise damaged(self.info.sha256, f"blob {self.info.key!r}")
        self.offset += len(data)
        if self._hasher is not None:
            self._hasher.update(data)
            if self.offset == self.info.size and self._hasher.hexdigest() != self.info.sha256:
                raise damaged(self.info.sha256, f"blob {self.info.key!r}")
        return data

    def chunks(self, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        while chunk := self.read(chunk_bytes):
            yield chunk

    def close(self) -> None:
        self.content.close()


class BlobStore(SQLiteStore):
    """Buckets of objects (see the module docstring). Raises `InvalidArgument`, `TooLarge`, `StoreUnavailable`."""

    def __init__(
        self,
        db: AnyDatabase,
        content: ContentStore,
        queues: QueueStore,
        *,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
        gc_grace_s: float = 600.0,
    ) -> None:
        super().__init__(db, "blobs", MIGRATIONS)
        self.content = content
        self.queues = queues
        self.max_object_bytes = max_object_bytes
        self.gc_grace_s = gc_grace_s

    # writing -------------------------------------------------------------------------------------
    def writer(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        *,
        writer: str | None = None,
        max_bytes: int | None = None,
        chain_depth: int = 0,
    ) -> BlobWriter:
        """Start writing `bucket/key`. `writer` is the function writing it (its own triggers are not
        told); `max_bytes` lowers the object limit for this write; `chain_depth` is the depth of the
        events it makes (`fnhost.chains`)."""
        require_resource_name("bucket", bucket)
        limit = self.max_object_bytes if max_bytes is None else min(max_bytes, self.max_object_bytes)
        key, content_type = require_key(key), require_content_type(content_type)
        return BlobWriter(self, bucket, key, content_type, limit, writer, chain_depth)

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes | Iterable[bytes],
        content_type: str | None = None,
        *,
        writer: str | None = None,
    ) -> BlobInfo:
        """Write a whole object from bytes or an iterable of chunks."""
        w = self.writer(bucket, key, content_type, writer=writer)
        try:
            for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                w.write(bytes(chunk))
            return w.finish()
        finally:
            w.abort()

    @translate_database_errors
    def _finish(self, w: BlobWriter) -> BlobInfo:
        if w.done:
            raise InvalidArgument("the blob write is already finished or aborted")
        sha256, now = w.upload.sha256, time.time()
        try:
            with self._db.transaction() as db:
                # First: take back a pending collection of this content (waits for a collector holding it).
                db.execute("DELETE FROM blob_garbage WHERE sha256 = ?", [sha256])
                self.content.commit(w.upload)
                old = db.execute(
                    "SELECT sha256, created_at FROM blob_objects WHERE bucket = ? AND key = ?"
                    + self._db.dialect.for_update,
                    [w.bucket, w.key],
                ).fetchone()
                created = now if old is None else float(old[1])
                db.execute(
                    "INSERT INTO blob_objects (bucket, key, sha256, size, content_type, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET sha256 = excluded.sha256,"
                    " size = excluded.size, content_type = excluded.content_type, updated_at = excluded.updated_at",
                    [w.bucket, w.key, sha256, w.upload.size, w.content_type, created, now],
                )
                if old is not None and old[0] != sha256:
                    self._collect_later(db, old[0])
                info = BlobInfo(w.bucket, w.key, w.upload.size, sha256, w.content_type, created, now)
                self._notify(info, PUT, w.writer, w.chain_depth)
        except BaseException:
            w.upload.abort()
            if w.upload.done and self.content.size(sha256) is not None:
                self._collect_later_alone(sha256)  # filed, but its object row rolled back
            raise
        return info

    # reading -------------------------------------------------------------------------------------
    @translate_database_errors
    def stat(self, bucket: str, key: str) -> BlobInfo | None:
        require_resource_name("bucket", bucket)
        row = self._db.db.execute(
            "SELECT key, size, sha256, content_type, created_at, updated_at FROM blob_objects"
            " WHERE bucket = ? AND key = ?",
            [bucket, require_key(key)],
        ).fetchone()
        return None if row is None else _info(bucket, row)

    def open(self, bucket: str, key: str) -> BlobReader | None:
        """A reader of the object, or None if there is none."""
        for _ in range(3):  # overwritten and collected between the two reads: read the new one
            info = self.stat(bucket, key)
            if info is None:
                return None
            content = self.content.open(info.sha256)
            if content is not None:
                return BlobReader(info, content)
        return None

    def get(self, bucket: str, key: str) -> bytes | None:
        reader = self.open(bucket, key)
        if reader is None:
            return None
        try:
            return b"".join(reader.chunks())
        finally:
            reader.close()

    @translate_database_errors
    def list(self, bucket: str, prefix: str = "", limit: int = MAX_LIST_LIMIT, after: str = "") -> list[BlobInfo]:
        """Objects whose key starts with `prefix`, in byte order, after key `after`, at most `limit`."""
        require_resource_name("bucket", bucket)
        if not isinstance(prefix, str) or len(prefix.encode("utf-8", "replace")) > MAX_KEY_BYTES:
            raise InvalidArgument(f"prefix must be a string of at most {MAX_KEY_BYTES} bytes")
        limit = max(1, min(int(limit), MAX_LIST_LIMIT))
        sql = (
            "SELECT key, size, sha256, content_type, created_at, updated_at FROM blob_objects"
            " WHERE bucket = ? AND key >= ? AND key > ?"
        )
        params: list[object] = [bucket, prefix, after]
        upper = prefix_successor(prefix)
        if upper is not None:
            sql += " AND key < ?"
            params.append(upper)
        rows = self._db.db.execute(sql + " ORDER BY key LIMIT ?", [*params, limit]).fetchall()
        return [_info(bucket, r) for r in rows]

    # deleting ------------------------------------------------------------------------------------
    @translate_database_errors
    def delete(self, bucket: str, key: str, *, writer: str | None = None, chain_depth: int = 0) -> bool:
        """Remove the object; False if there was none (that is not an error, and not an event). `writer`
        and `chain_depth` as for `writer`."""
        require_resource_name("bucket", bucket)
        require_key(key)
        with self._db.transaction() as db:
            row = db.execute(
                "DELETE FROM blob_objects WHERE bucket = ? AND key = ?"
                " RETURNING key, size, sha256, content_type, created_at, updated_at",
                [bucket, key],
            ).fetchone()
            if row is None:
                return False
            info = _info(bucket, row)
            self._collect_later(db, info.sha256)
            self._notify(info, DELETE, writer, chain_depth)
        return True

    def _collect_later(self, db: Any, sha256: str) -> None:
        db.execute(
            "INSERT INTO blob_garbage (sha256, due_at) VALUES (?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET due_at = excluded.due_at",
            [sha256, time.time() + self.gc_grace_s],
        )

    @translate_database_errors
    def _collect_later_alone(self, sha256: str) -> None:
        with self._db.transaction() as db:
            if db.execute("SELECT 1 FROM blob_objects WHERE sha256 = ? LIMIT 1", [sha256]).fetchone() is None:
                self._collect_later(db, sha256)

    @translate_database_errors
    def collect_garbage(self, limit: int = 100) -> int:
        """Delete up to `limit` contents due for collection that no object references; how many."""
        deleted = 0
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT sha256 FROM blob_garbage WHERE due_at <= ? ORDER BY due_at LIMIT ?"
                + self._db.dialect.skip_locked,
                [time.time(), limit],
            ).fetchall()
            for (sha256,) in rows:
                if db.execute("SELECT 1 FROM blob_objects WHERE sha256 = ? LIMIT 1", [sha256]).fetchone() is None:
                    self.content.delete(sha256)
                    deleted += 1
                db.execute("DELETE FROM blob_garbage WHERE sha256 = ?", [sha256])
        self.content.sweep_uploads()
        return deleted

    # object-change events ------------------------------------------------------------------------
    @translate_database_errors
    def set_subscriptions(self, function: str, subscriptions: Iterable[BlobSubscription]) -> None:
        """Replace every blob trigger of `function` (its live manifest's)."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM blob_subscriptions WHERE function = ?", [function])
            for s in subscriptions:
                db.execute(
                    "INSERT INTO blob_subscriptions (function, queue, bucket, prefix, events) VALUES (?, ?, ?, ?, ?)",
                    [function, s.queue, s.bucket, s.prefix, json.dumps(list(s.events))],
                )

    @translate_database_errors
    def subscriptions(self, bucket: str | None = None) -> builtins.list[BlobSubscription]:
        sql, params = "SELECT function, queue, bucket, prefix, events FROM blob_subscriptions", []
        if bucket is not None:
            sql, params = sql + " WHERE bucket = ?", [bucket]
        rows = self._db.db.execute(sql + " ORDER BY function, queue", params).fetchall()
        return [BlobSubscription(r[0], r[1], r[2], r[3], tuple(json.loads(r[4]))) for r in rows]

    def _notify(self, info: BlobInfo, event: str, writer: str | None, chain_depth: int) -> None:
        """Inside the change's transaction: one message per matching trigger in its queue, at `chain_depth`."""
        body: bytes | None = None
        for s in self.subscriptions(info.bucket):
            if event not in s.events or not info.key.startswith(s.prefix) or s.function == writer:
                continue
            if body is None:
                body = json.dumps({"event": event, **info.to_dict()}).encode()
            try:
                self.queues.publish(s.queue, body, chain_depth=chain_depth)
            except ChainTooDeep as e:  # named as the writer sees it, not by the trigger's own queue
                what = f"the {event} of blob {info.bucket}/{info.key}, an event for function '{s.function}',"
                raise ChainTooDeep(what, e.depth, e.limit) from None


def _info(bucket: str, row: Any) -> BlobInfo:
    return BlobInfo(bucket, row[0], int(row[1]), row[2], row[3], float(row[4]), float(row[5]))
