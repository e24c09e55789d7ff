"""Blob objects in buckets, streamed in chunks (`fnhost:function/blobs@0.2.0`). A bucket is reachable
only when the manifest grants it (`[grants] blobs = ["uploads"]`), like a kv bucket: namespaced,
authorized at deploy, shareable. A blob trigger's bucket is a resource its manifest hands the
function too.

Objects never cross as one value: a guest opens a handle (`open-write`, `open-read`), moves chunks of
at most `MAX_CHUNK_BYTES` (`write`, `read`), and ends it (`finish`, `abort`, `close`). Handles are
small integers valid only in the invocation that opened them (at most `MAX_HANDLES` open at once);
at its end the host closes every one left open and aborts every unfinished write, so an unfinished
write is never visible. Every call counts against the invocation's host-call budget, and every byte
moved against `limits.max_host_bytes`: raise it for objects larger than its default (64 MiB).

There is no operation by digest: a guest reaches content only through a granted bucket's keys.
The events a guest's puts and deletes make carry its chain depth plus one (`fnhost.chains`).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Any

from wasmtime.component import Record

from ..manifest import Manifest
from ..stores.blobs import BlobInfo, BlobReader, BlobStore, BlobWriter
from ..stores.errors import ChainTooDeep, StoreError
from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import U32, ByteText, bytes_as_text, bytes_of_text, operation, text_size
from .state import CallState

BLOB = "blob"
MAX_HANDLES = 16
"""Open handles (reads and writes together) one invocation may hold."""
MAX_CHUNK_BYTES = 4 << 20
"""The most one `read` returns and one `write` takes."""
MAX_LIST_LIMIT = 1000


@dataclass(frozen=True)
class ObjectInfo:
    """The WIT `blobs.object-info` record (times in milliseconds since the Unix epoch)."""

    key: str
    size: int
    sha256: str
    content_type: str
    created_unix_ms: int
    updated_unix_ms: int

    @classmethod
    def of(cls, info: BlobInfo) -> ObjectInfo:
        created, updated = int(info.created_at * 1000), int(info.updated_at * 1000)
        return cls(info.key, info.size, info.sha256, info.content_type, created, updated)

    def as_record(self) -> Record:
        record = Record()
        for name, value in vars(self).items():
            setattr(record, name.replace("_", "-"), value)
        return record

    def core_encode(self) -> bytes:
        """docs/abi.md, blobs: key, size (u64), sha256, content type, created and updated (u64 ms)."""
        out = bytearray()
        for text, number in ((self.key, self.size), (self.sha256, None), (self.content_type, None)):
            raw = text.encode()
            out += struct.pack("<I", len(raw)) + raw
            if number is not None:
                out += struct.pack("<Q", number)
        return bytes(out + struct.pack("<QQ", self.created_unix_ms, self.updated_unix_ms))


class Handles:
    """The open handles of one invocation; `close_all` runs when it ends."""

    def __init__(self) -> None:
        self.open: dict[int, BlobReader | BlobWriter] = {}
        self.next = 1

    def add(self, handle: BlobReader | BlobWriter) -> int:
        if len(self.open) >= MAX_HANDLES:
            handle.close() if isinstance(handle, BlobReader) else handle.abort()
            raise HostCallError(
                ErrorKind.LIMIT_EXCEEDED,
                f"this invocation already holds {MAX_HANDLES} open blob handles: finish, abort or close some first",
            )
        number, self.next = self.next, self.next + 1
        self.open[number] = handle
        return number

    def get(self, number: int, kind: type[Any]) -> Any:
        handle = self.open.get(number)
        if not isinstance(handle, kind):
            what = "reading" if kind is BlobReader else "writing"
            raise HostCallError(ErrorKind.INVALID, f"blob handle {number} is not open for {what} in this invocation")
        return handle

    def close(self, number: int) -> None:
        handle = self.open.pop(number, None)
        if isinstance(handle, BlobReader):
            handle.close()
        elif handle is not None:
            handle.abort()

    def close_all(self) -> None:
        for number in list(self.open):
            try:
                self.close(number)
            except StoreError:  # the database is away: its uploads are swept later
                continue


class BlobsCapability(Capability):
    interface = "blobs"
    grant_key = "blobs"
    kind = BLOB
    noun = "blob bucket"

    def __init__(self, store: BlobStore, gc_interval_s: float = 60.0) -> None:
        self.store = store
        self._stop = threading.Event()
        self._collector = threading.Thread(
            target=self._collect, args=(gc_interval_s,), name="fnhost-blob-gc", daemon=True
        )
        self._collector.start()

    def _collect(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                while self.store.collect_garbage(100) == 100 and not self._stop.is_set():
                    pass
            except StoreError:  # the database is busy or away: the next round collects
                continue

    def close(self) -> None:
        self._stop.set()
        self._collector.join(timeout=10)

    @classmethod
    def resources(cls, manifest: Manifest) -> list[tuple[str, str]]:
        named = super().resources(manifest)
        for i, t in enumerate(manifest.blob_triggers):
            named.append((t.bucket, f"triggers.blob[{i}].bucket"))
        return named

    @staticmethod
    def _handles(state: CallState) -> Handles:
        handles = state.resources.get(BLOB)
        if handles is None:
            handles = state.resources[BLOB] = Handles()
            state.on_end.append(handles.close_all)
        assert isinstance(handles, Handles)
        return handles

    @operation(since="0.2.0")
    def open_write(self, state: CallState, bucket: str, key: str, content_type: str) -> U32:
        stored = self.store_name(state, bucket)
        state.charge(len(key) + len(content_type))
        writer = self.store.writer(
            stored, key, content_type or None, writer=state.function, chain_depth=state.chain_depth + 1
        )
        return self._handles(state).add(writer)

    @operation(since="0.2.0")
    def write(self, state: CallState, handle: U32, data: bytes) -> None:
        if len(data) > MAX_CHUNK_BYTES:
            raise HostCallError(ErrorKind.TOO_LARGE, f"a blob write takes at most {MAX_CHUNK_BYTES} bytes at once")
        handles = self._handles(state)
        writer: BlobWriter = handles.get(handle, BlobWriter)
        state.charge(len(data))
        try:
            writer.write(bytes(data))
        except StoreError:
            handles.close(handle)  # over the limit (aborted already) or the store failed: the handle ends
            raise

    @operation(since="0.2.0")
    def write_text(self, state: CallState, handle: U32, data: str, encoding: ByteText) -> None:
        """`write`, the chunk as text: a string crosses in bulk, a list<u8> value by value."""
        if text_size(data, encoding) > MAX_CHUNK_BYTES + 2:  # before decoding (base64 pads up to 2)
            raise HostCallError(ErrorKind.TOO_LARGE, f"a blob write takes at most {MAX_CHUNK_BYTES} bytes at once")
        self.write(state, handle, bytes_of_text(data, encoding, "blob chunk"))

    @operation(since="0.2.0")
    def finish(self, state: CallState, handle: U32) -> ObjectInfo:
        handles = self._handles(state)
        writer: BlobWriter = handles.get(handle, BlobWriter)
        state.charge(0)
        try:
            return ObjectInfo.of(writer.finish())
        except ChainTooDeep as e:
            raise state.stop_chain(e) from None
        finally:
            handles.close(handle)

    @operation(since="0.2.0")
    def abort(self, state: CallState, handle: U32) -> None:
        self._end(state, handle, BlobWriter)

    def _end(self, state: CallState, handle: int, kind: type[BlobReader | BlobWriter]) -> None:
        handles = self._handles(state)
        handles.get(handle, kind)
        state.charge(0)
        handles.close(handle)

    @operation(since="0.2.0")
    def open_read(self, state: CallState, bucket: str, key: str) -> U32:
        stored = self.store_name(state, bucket)
        state.charge(len(key))
        reader = self.store.open(stored, key)
        if reader is None:
            raise HostCallError(ErrorKind.NOT_FOUND)
        return self._handles(state).add(reader)

    @operation(since="0.2.0")
    def read(self, state: CallState, handle: U32, max_bytes: U32) -> bytes:
        reader: BlobReader = self._handles(state).get(handle, BlobReader)
        n = max(0, min(max_bytes, MAX_CHUNK_BYTES, reader.end - reader.offset))
        state.charge(n)
        return reader.read(n)

    @operation(since="0.2.0")
    def read_text(self, state: CallState, handle: U32, max_bytes: U32, encoding: ByteText) -> str:
        """`read`, the bytes as text (see `write_text`)."""
        return bytes_as_text(self.read(state, handle, max_bytes), encoding)

    @operation(since="0.2.0")
    def close_read(self, state: CallState, handle: U32) -> None:
        self._end(state, handle, BlobReader)

    @operation(since="0.2.0")
    def stat(self, state: CallState, bucket: str, key: str) -> ObjectInfo:
        stored = self.store_name(state, bucket)
        state.charge(len(key))
        info = self.store.stat(stored, key)
        if info is None:
            raise HostCallError(ErrorKind.NOT_FOUND)
        return ObjectInfo.of(info)

    @operation(since="0.2.0")
    def list_keys(self, state: CallState, bucket: str, prefix: str, after: str, limit: U32) -> list[str]:
        stored = self.store_name(state, bucket)
        state.charge(len(prefix) + len(after))
        keys = [i.key for i in self.store.list(stored, prefix, max(1, min(limit, MAX_LIST_LIMIT)), after)]
        state.charge(sum(len(k) for k in keys))
        return keys

    @operation(since="0.2.0")
    def delete(self, state: CallState, bucket: str, key: str) -> None:
        stored = self.store_name(state, bucket)
        state.charge(len(key))
        try:
            self.store.delete(stored, key, writer=state.function, chain_depth=state.chain_depth + 1)
        except ChainTooDeep as e:
            raise state.stop_chain(e) from None
