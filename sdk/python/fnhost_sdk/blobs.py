"""Blob objects in buckets granted in the manifest (`[grants] blobs = ["uploads"]`).

    from fnhost_sdk import blobs

    blobs.put("uploads", "in/report.csv", data, content_type="text/csv")
    with blobs.open("uploads", "in/big.bin") as f:   # a readable file object, read in chunks
        for chunk in iter(lambda: f.read(1 << 20), b""):
            ...
    blobs.get("uploads", "in/report.csv")          # the whole object (mind limits.memory_mb)
    blobs.stat("uploads", "in/report.csv").size
    blobs.list("uploads", prefix="in/")            # keys, in byte order
    blobs.delete("uploads", "in/report.csv")

Objects cross the host boundary in chunks of at most `CHUNK_BYTES`, never whole, and as text
(`write-text`/`read-text`): a string crosses in bulk where a `list<u8>` crosses one value per byte
(~1 s per MiB). A write is visible only once finished; one the function leaves unfinished is
dropped when the invocation ends.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from componentize_py_types import Err

try:
    from wit_world.imports import blobs as _blobs
    from wit_world.imports.body import ByteText
except ImportError:  # built against fnhost:function@0.1.0, which has no blobs: fail at the first use
    _blobs = None  # type: ignore[assignment]

from ._body import as_text, from_text
from ._errors import NotFound, host_error

CHUNK_BYTES = 1 << 20
"""How much one host call moves (the host takes at most 4 MiB per call)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str
    content_type: str
    created_unix_ms: int
    updated_unix_ms: int


def _info(raw: _blobs.ObjectInfo) -> ObjectInfo:
    return ObjectInfo(raw.key, raw.size, raw.sha256, raw.content_type, raw.created_unix_ms, raw.updated_unix_ms)


def _call(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except Err as e:
        raise host_error(e) from None


def _require() -> None:
    if _blobs is None:
        raise RuntimeError("fnhost_sdk.blobs needs fnhost:function@0.2.0 or later; build against sdk/wit")


class Writer(io.RawIOBase):
    """A write handle as a file object: `write` chunks, then `close` (or leave the `with` block) to
    make the object visible; an exception inside the `with` block aborts it instead."""

    def __init__(self, bucket: str, key: str, content_type: str | None = None) -> None:
        super().__init__()
        _require()
        self._handle: int | None = _call(_blobs.open_write, bucket, key, content_type or "")
        self.info: ObjectInfo | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._handle is None:
            raise ValueError("write to a finished or aborted blob writer")
        view = memoryview(data).cast("B")
        for start in range(0, len(view), CHUNK_BYTES):
            try:
                _blobs.write_text(self._handle, *as_text(view[start : start + CHUNK_BYTES]))
            except Err as e:
                self._handle = None  # the host ended it (over the limit, or the store failed)
                raise host_error(e) from None
        return len(view)

    def finish(self) -> ObjectInfo:
        if self._handle is None:
            if self.info is not None:
                return self.info
            raise ValueError("the blob writer was aborted")
        handle, self._handle = self._handle, None
        self.info = _info(_call(_blobs.finish, handle))
        return self.info

    def abort(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            _call(_blobs.abort, handle)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._handle is not None:
                    self.finish()
            finally:
                super().close()

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is not None:
            self.abort()
        self.close()

    def __del__(self) -> None:
        # Never finish a writer nobody closed (IOBase would close it): the host drops it at the end.
        self._handle = None
        self.info = self.info or None
        with contextlib.suppress(Exception):
            super().close()


class Reader(io.RawIOBase):
    """A read handle as a file object: each `read(n)` asks the host for at most n bytes; wrap it in
    `io.BufferedReader` or iterate `chunks()` for streaming."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__()
        _require()
        self._handle: int | None = _call(_blobs.open_read, bucket, key)
        # Chunks come as latin-1 text while they are ASCII (a copy); after a chunk that is not, as
        # base64 (decoding non-ASCII UTF-8 costs this CPython ~3x what base64 does): one probe per object
        self._encoding = ByteText.LATIN1

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if self._handle is None:
            raise ValueError("read from a closed blob reader")
        if size is None or size < 0:
            return b"".join(self.chunks())
        encoding = self._encoding
        text = _call(_blobs.read_text, self._handle, min(size, 4 << 20), encoding)
        if not text.isascii():
            self._encoding = ByteText.BASE64
        return from_text(text, encoding)

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        while chunk := self.read(chunk_bytes):
            yield chunk

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            _call(_blobs.close_read, handle)
        super().close()


def put(
    bucket: str, key: str, data: bytes | str | Iterable[bytes], content_type: str | None = None
) -> ObjectInfo:
    """Store an object (str as UTF-8; an iterable of chunks is streamed) and return its metadata."""
    writer = Writer(bucket, key, content_type)
    try:
        if isinstance(data, str):
            writer.write(data.encode())
        elif isinstance(data, bytes | bytearray | memoryview):
            writer.write(data)
        else:
            for chunk in data:
                writer.write(chunk)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def open(bucket: str, key: str, mode: str = "rb", content_type: str | None = None) -> Reader | Writer:
    """`"rb"`: a file object reading the object in chunks (`NotFound` if missing); `"wb"`: one
    writing it, visible when closed."""
    if mode == "rb":
        return Reader(bucket, key)
    if mode == "wb":
        return Writer(bucket, key, content_type)
    raise ValueError(f"blobs.open: mode must be 'rb' or 'wb', not {mode!r}")


def get(bucket: str, key: str) -> bytes | None:
    """The whole object, or None if there is none."""
    try:
        reader = Reader(bucket, key)
    except NotFound:
        return None
    with reader:
        return reader.read()


def stat(bucket: str, key: str) -> ObjectInfo | None:
    """The object's metadata, or None if there is none."""
    _require()
    try:
        return _info(_blobs.stat(bucket, key))
    except Err as e:
        error = host_error(e)
    if isinstance(error, NotFound):
        return None
    raise error


def list(bucket: str, prefix: str = "", limit: int | None = None) -> list[str]:
    """Keys starting with `prefix`, in byte order (all of them, or the first `limit`)."""
    _require()
    keys: list[str] = []
    after = ""
    while limit is None or len(keys) < limit:
        want = 1000 if limit is None else min(1000, limit - len(keys))
        page = _call(_blobs.list_keys, bucket, prefix, after, want)
        keys += page
        if len(page) < want:
            break
        after = page[-1]
    return keys


def delete(bucket: str, key: str) -> None:
    """Remove the object; deleting a missing key succeeds."""
    _require()
    _call(_blobs.delete, bucket, key)
