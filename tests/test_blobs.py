"""Blob storage: the store on both backends (files or chunked rows for content, metadata in SQLite or
PostgreSQL), the `blobs` capability through a real Python guest, blob triggers through the queue
machinery, and the streamed HTTP API under real Hypercorn — with the hostile cases of each."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import COMPILED, build_or_skip
from test_e2e import _env, fnhost, server
from test_triggers import wait_for

from fnhost import Host, Outcome
from fnhost.capabilities.blobs import BlobsCapability
from fnhost.control.auth import ApiKeys
from fnhost.errors import Forbidden
from fnhost.stores import InvalidArgument, TooLarge
from fnhost.stores.blobs import BlobStore, BlobSubscription
from fnhost.stores.content import DatabaseContentStore, FileContentStore
from fnhost.stores.errors import CorruptBlob
from fnhost.stores.queues import SQLiteQueueStore
from fnhost.triggers import Triggers

GUESTS = Path(__file__).resolve().parents[1] / "guests"
MiB = 1 << 20


# the store, on both backends -------------------------------------------------------------------------
@pytest.fixture(params=["files", "rows"])
def store(request: pytest.FixtureRequest, any_db: Any, tmp_path: Path) -> BlobStore:
    content = (
        FileContentStore(tmp_path / "blobs") if request.param == "files" else DatabaseContentStore(any_db, "blobs")
    )
    return BlobStore(any_db, content, SQLiteQueueStore(any_db), max_object_bytes=3 * MiB, gc_grace_s=0)


def leftovers(store: BlobStore) -> list[str]:
    """Uploads not committed: temp files, or upload rows and their chunks."""
    content = store.content
    if isinstance(content, FileContentStore):
        return [p.name for p in content.dir.glob(".tmp-*")]
    db = content._db.db
    rows = db.execute("SELECT object FROM content_chunks WHERE object LIKE 'upload:%'").fetchall()
    rows += db.execute("SELECT id FROM content_uploads").fetchall()
    return [r[0] for r in rows]


def test_objects_stream_in_and_out_with_their_metadata(store: BlobStore) -> None:
    data = bytes(range(256)) * (2 * 4096 + 7)  # 2 MiB + 1792 bytes: three chunk rows
    w = store.writer("uploads", "in/a.bin", "application/x-test")
    for i in range(0, len(data), 100_000):
        w.write(data[i : i + 100_000])
    assert store.stat("uploads", "in/a.bin") is None  # not visible before finish
    info = w.finish()
    assert (info.size, info.sha256, info.content_type) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        "application/x-test",
    )
    reader = store.open("uploads", "in/a.bin")
    assert reader is not None
    parts = list(reader.chunks(300_000))
    assert b"".join(parts) == data and max(map(len, parts)) == 300_000
    time.sleep(0.01)
    again = store.put("uploads", "in/a.bin", b"short", "text/plain")
    assert again.created_at == info.created_at and again.updated_at > info.updated_at
    assert reader.read(10) == b""  # a reader keeps what it opened
    store.put("uploads", "in/b", b"b")
    store.put("uploads", "other", b"o")
    store.put("elsewhere", "in/c", b"c")
    assert [i.key for i in store.list("uploads", "in/")] == ["in/a.bin", "in/b"]
    assert [i.key for i in store.list("uploads", after="in/a.bin")] == ["in/b", "other"]
    assert store.get("uploads", "in/a.bin") == b"short"
    assert store.delete("uploads", "in/a.bin") and not store.delete("uploads", "in/a.bin")
    assert store.get("uploads", "in/a.bin") is None and leftovers(store) == []


def test_an_object_over_the_limit_is_refused_while_streaming_and_leaves_nothing(store: BlobStore) -> None:
    w = store.writer("uploads", "big")
    w.write(bytes(2 * MiB))
    with pytest.raises(TooLarge, match="over 3145728 bytes, the object size limit"):
        w.write(bytes(2 * MiB))
    assert w.done and store.stat("uploads", "big") is None and leftovers(store) == []
    with pytest.raises(TooLarge):
        store.put("uploads", "big", (bytes(MiB) for _ in range(4)))
    assert store.list("uploads") == [] and leftovers(store) == []


def test_unfinished_and_aborted_writes_are_never_visible(store: BlobStore) -> None:
    store.put("uploads", "k", b"old")
    w = store.writer("uploads", "k")
    w.write(b"new content never finished")
    assert store.get("uploads", "k") == b"old"
    w.abort()
    assert store.get("uploads", "k") == b"old" and leftovers(store) == []
    with pytest.raises(InvalidArgument, match="already finished or aborted"):
        w.finish()


def test_content_no_object_references_is_collected_and_shared_content_is_kept(store: BlobStore) -> None:
    a = store.put("uploads", "a", b"same bytes")
    store.put("team-b/private", "b", b"same bytes")  # another namespace's object, equal content
    store.put("uploads", "a", b"replaced")
    store.delete("team-b/private", "b")
    assert store.content.size(a.sha256) is not None  # due, not yet collected
    assert store.collect_garbage() == 1
    assert store.content.size(a.sha256) is None
    kept = store.put("uploads", "x", b"kept")
    store.put("uploads", "y", b"kept")
    store.delete("uploads", "x")
    assert store.collect_garbage() == 0 and store.get("uploads", "y") == b"kept"
    assert store.content.size(kept.sha256) is not None
    store.delete("uploads", "y")
    store.put("uploads", "z", b"kept")  # put again before the collector ran: taken back, not collected
    assert store.collect_garbage() == 0 and store.get("uploads", "z") == b"kept"


def damage(store: BlobStore, sha256: str, *, truncate: bool = False) -> None:
    """Change one byte of stored content (or drop its last bytes) behind the store's back."""
    content = store.content
    if isinstance(content, FileContentStore):
        path = content._path(sha256)
        data = bytearray(path.read_bytes())
        if truncate:
            del data[-10:]
        else:
            data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
        return
    db = content._db.db
    pos, data = db.execute(
        "SELECT pos, data FROM content_chunks WHERE object = ? ORDER BY pos DESC LIMIT 1", [sha256]
    ).fetchone()
    changed = bytes(data)[:-10] if truncate else bytes([data[0] ^ 1]) + bytes(data)[1:]
    with content._db.transaction():
        db.execute("UPDATE content_chunks SET data = ? WHERE object = ? AND pos = ?", [changed, sha256, pos])


@pytest.mark.parametrize("truncate", [False, True], ids=["flipped", "truncated"])
def test_damaged_content_is_refused_by_the_read_that_reaches_its_end(store: BlobStore, truncate: bool) -> None:
    data = bytes(range(256)) * (2 * 4096 + 7)  # three 1 MiB reads
    info = store.put("uploads", "in/a.bin", data)
    damage(store, info.sha256, truncate=truncate)
    reader = store.open("uploads", "in/a.bin")
    assert reader is not None
    got = [reader.read(1 << 20), reader.read(1 << 20)]  # whole 1 MiB pieces come out as they are
    with pytest.raises(CorruptBlob, match=f"{info.sha256}.*damaged at rest.*put it again"):
        got.append(reader.read(1 << 20))  # the last bytes are never handed out
    reader.close()
    with pytest.raises(CorruptBlob):
        store.get("uploads", "in/a.bin")
    # a range is not checked (only the whole object has a digest), and is what is stored
    ranged = store.open("uploads", "in/a.bin")
    assert ranged is not None
    ranged.byte_range(10, 20)
    assert ranged.read(1 << 20) == data[10:20] and ranged.read(1 << 20) == b""
    with pytest.raises(InvalidArgument, match="outside the object"):
        ranged.byte_range(0, len(data) + 1)
    ranged.close()


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("../etc/passwd", "'..' path segment"),
        ("a/../b", "'..' path segment"),
        ("a//b", "empty"),
        ("/abs", "starts with '/'"),
        ("a/.", "'.'"),
        ("nul\x00byte", "control character"),
        ("new\nline", "control character"),
        ("cafe\u0301", "normal form NFC"),  # looks like "café" (precomposed)
        ("", "non-empty"),
        ("k" * 1025, "over the limit of 1024 bytes"),
    ],
)
def test_hostile_keys_are_refused_with_the_rule(tmp_path: Path, key: str, why: str) -> None:
    host_store = BlobStore(_db(tmp_path), FileContentStore(tmp_path / "c"), SQLiteQueueStore(_db(tmp_path)))
    with pytest.raises((InvalidArgument, TooLarge), match=why):
        host_store.put("uploads", key, b"x")
    with pytest.raises(InvalidArgument, match="bucket name"):
        host_store.put("../uploads", "k", b"x")


def _db(tmp_path: Path) -> Any:
    from fnhost.stores import Database

    return Database(tmp_path / "fnhost.db")


def test_changes_enqueue_events_for_matching_triggers_but_not_for_the_writer(store: BlobStore) -> None:
    queues = store.queues
    store.set_subscriptions("fn", [BlobSubscription("fn", "q-fn", "uploads", "in/", ("put",))])
    store.set_subscriptions("other", [BlobSubscription("other", "q-other", "uploads", "", ("put", "delete"))])
    store.put("uploads", "in/a", b"1")
    store.put("uploads", "out/b", b"2")
    store.put("uploads", "in/own", b"3", writer="fn")  # the function's own write: not an event for it
    store.delete("uploads", "in/a")
    store.delete("uploads", "missing")  # nothing deleted: no event
    store.put("elsewhere", "in/a", b"4")
    fn = [json.loads(m.body) for m in queues.peek("q-fn", 10)]
    other = [(json.loads(m.body)["event"], json.loads(m.body)["key"]) for m in queues.peek("q-other", 10)]
    assert [(e["event"], e["key"], e["size"]) for e in fn] == [("put", "in/a", 1)]
    assert fn[0]["sha256"] == hashlib.sha256(b"1").hexdigest() and fn[0]["bucket"] == "uploads"
    assert other == [("put", "in/a"), ("put", "out/b"), ("put", "in/own"), ("delete", "in/a")]
    store.set_subscriptions("fn", [])
    assert [s.function for s in store.subscriptions("uploads")] == ["other"]


# the capability, through a real Python guest -----------------------------------------------------------
@pytest.fixture(scope="module")
def files_wasm() -> tuple[bytes, Any]:
    built = build_or_skip(GUESTS / "python" / "files")
    return built.wasm_path.read_bytes(), built.manifest


@pytest.fixture(scope="module")
def guest_host(tmp_path_factory: pytest.TempPathFactory, files_wasm: tuple[bytes, Any]) -> Iterator[Host]:
    host = Host(tmp_path_factory.mktemp("blobs") / "data", cache_dir=COMPILED, max_blob_bytes=2 * MiB)
    wasm, manifest = files_wasm
    host.deploy("files", wasm, manifest)
    host.deploy("team-b/files", wasm, manifest)  # the same grants, resolved in namespace team-b
    yield host
    host.close()


def call(host: Host, function: str = "files", **args: object) -> dict[str, Any]:
    r = host.invoke(function, json.dumps(args).encode())
    assert r.outcome is Outcome.OK, (r.outcome, r.error, r.logs)
    out: dict[str, Any] = json.loads(r.output)
    return out


def test_python_guest_puts_reads_streams_lists_and_deletes(guest_host: Host) -> None:
    put = call(guest_host, op="put", key="docs/a.txt", data="hello ", repeat=3, content_type="text/plain")
    assert put["size"] == 18 and put["sha256"] == hashlib.sha256(b"hello " * 3).hexdigest()
    assert put["content_type"] == "text/plain" and put["created_unix_ms"] == put["updated_unix_ms"]
    assert guest_host.blobs.get("uploads", "docs/a.txt") == b"hello " * 3
    assert call(guest_host, op="get", key="docs/a.txt") == {"data": "hello " * 3}
    assert call(guest_host, op="stat", key="docs/a.txt")["size"] == 18
    assert call(guest_host, op="stat", key="docs/none") == {"missing": True}
    assert call(guest_host, op="get", key="docs/none") == {"missing": True}
    big = bytes(range(256)) * 4500  # 1.1 MiB: two 1 MiB reads
    guest_host.blobs.put("uploads", "docs/big", big)
    assert call(guest_host, op="sum", key="docs/big") == {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    assert call(guest_host, op="copy", key="docs/big", to="docs/copy")["sha256"] == hashlib.sha256(big).hexdigest()
    assert call(guest_host, op="list", prefix="docs/") == {"keys": ["docs/a.txt", "docs/big", "docs/copy"]}
    assert call(guest_host, op="delete", key="docs/copy") == {}
    assert call(guest_host, op="delete", key="docs/copy") == {}  # deleting a missing key succeeds
    assert guest_host.blobs.stat("uploads", "docs/copy") is None


def test_a_guest_reading_a_damaged_object_gets_unavailable_at_its_end(guest_host: Host) -> None:
    big = bytes(range(256)) * 4500  # 1.1 MiB: two reads
    info = guest_host.blobs.put("uploads", "docs/damaged", big)
    stored = guest_host.data_dir / "blobs" / info.sha256
    damaged = bytearray(stored.read_bytes())
    damaged[-1] ^= 1
    stored.write_bytes(bytes(damaged))
    out = call(guest_host, op="sum", key="docs/damaged")
    assert out["error"] == "unavailable" and "damaged at rest" in out["message"], out
    guest_host.blobs.delete("uploads", "docs/damaged")


def test_chunks_cross_as_text_whichever_bytes_they_hold(guest_host: Host) -> None:
    """The Python SDK moves chunks as latin-1 while they are ASCII and as base64 after one that is
    not: an object that starts as text and turns binary comes back whole, through reads and writes."""
    data = b"plain text, " * 90_000 + bytes(range(256)) * 2048 + b"and text again"  # 1.6 MiB
    guest_host.blobs.put("uploads", "docs/mixed", data)
    digest = hashlib.sha256(data).hexdigest()
    assert call(guest_host, op="sum", key="docs/mixed") == {"size": len(data), "sha256": digest}
    assert call(guest_host, op="copy", key="docs/mixed", to="docs/mixed2")["sha256"] == digest
    assert guest_host.blobs.get("uploads", "docs/mixed2") == data


def test_text_chunks_that_are_not_in_their_encoding_are_invalid() -> None:
    from fnhost.capabilities.errors import HostCallError
    from fnhost.capabilities.operations import bytes_as_text, bytes_of_text, text_size

    raw = bytes(range(256))
    for encoding in ("latin1", "base64"):
        text = bytes_as_text(raw, encoding)  # type: ignore[arg-type]
        assert bytes_of_text(text, encoding, "blob chunk") == raw  # type: ignore[arg-type]
        assert text_size(text, encoding) >= len(raw)  # type: ignore[arg-type]
    with pytest.raises(HostCallError, match="blob chunk has a character above U\\+00FF"):
        bytes_of_text("caf\u00e9 \u20ac", "latin1", "blob chunk")
    with pytest.raises(HostCallError, match="blob chunk is not padded base64"):
        bytes_of_text("abc", "base64", "blob chunk")


def test_a_guest_reaches_only_its_granted_bucket_in_its_own_namespace(guest_host: Host) -> None:
    guest_host.blobs.put("secret", "k", b"not yours")
    denied = call(guest_host, op="get", bucket="secret", key="k")
    assert denied["error"] == "denied" and "blob bucket 'secret' is not granted" in denied["message"]
    guest_host.blobs.put("uploads", "shared-name", b"default's")
    assert call(guest_host, "team-b/files", op="get", key="shared-name") == {"missing": True}
    call(guest_host, "team-b/files", op="put", key="shared-name", data="team-b's")
    assert guest_host.blobs.get("team-b/uploads", "shared-name") == b"team-b's"
    assert guest_host.blobs.get("uploads", "shared-name") == b"default's"
    assert call(guest_host, "team-b/files", op="get", bucket="default/uploads", key="shared-name")["error"] == "denied"
    # No operation takes a digest: content is reached only through a granted bucket's keys.
    params = {op.name: op.params for op in BlobsCapability.operations()}
    assert "open-read" in params and not any("sha" in op for op in params)


def test_leaked_handles_are_closed_and_an_unfinished_write_is_never_visible(guest_host: Host) -> None:
    guest_host.blobs.put("uploads", "leak-src", b"src")
    assert call(guest_host, op="leak", key="leak-dst", read="leak-src") == {"leaked": 2}
    assert guest_host.blobs.stat("uploads", "leak-dst") is None
    opened = call(guest_host, op="handles", key="leak-src")
    assert opened["opened"] == 16 and opened["error"] == "limit-exceeded"
    assert call(guest_host, op="stat", key="leak-src")["size"] == 3  # the next invocation has all its handles
    assert leftovers(guest_host.blobs) == []


def test_a_guest_object_over_the_limit_is_refused_and_nothing_is_stored(
    guest_host: Host, files_wasm: tuple[bytes, Any]
) -> None:
    r = call(guest_host, op="fill", key="too-big", mb=3)
    assert r["error"] == "too-large" and "object size limit" in r["message"]
    assert guest_host.blobs.stat("uploads", "too-big") is None and leftovers(guest_host.blobs) == []
    wasm, manifest = files_wasm
    limits = dataclasses.replace(manifest.limits, max_host_bytes=MiB)
    guest_host.deploy("files-small", wasm, dataclasses.replace(manifest, name="files-small", limits=limits))
    r = call(guest_host, "files-small", op="fill", key="budget", mb=2)
    assert r["error"] == "limit-exceeded" and "max_host_bytes" in r["message"]
    assert guest_host.blobs.stat("uploads", "budget") is None


# blob triggers: the queue machinery delivers them ------------------------------------------------------
TRIGGERED = {
    "triggers": {
        "blob": [
            {
                "bucket": "uploads",
                "prefix": "in/",
                "events": ["put", "delete"],
                "visibility_timeout_s": 21,
                "max_receive_count": 2,
            }
        ]
    },
    "grants": {"blobs": ["uploads"], "kv": ["seen"]},
}


def test_blob_triggers_deliver_puts_and_deletes_once_each_and_not_the_functions_own_writes(
    tmp_path: Path, files_wasm: tuple[bytes, Any]
) -> None:
    wasm, manifest = files_wasm
    data = tmp_path / "data"
    with Host(data, cache_dir=COMPILED) as host:
        host.deploy("watcher", wasm, {**manifest.to_dict(), "name": "watcher", **TRIGGERED})
        # Changes while no trigger worker runs are durable: they wait in the trigger's queue.
        host.blobs.put("uploads", "in/a.txt", b"first")
        host.blobs.put("uploads", "ignored/b", b"not watched")
        (mapping,) = [m for m in Triggers(host).queue_mappings() if m.blob is not None]
        assert host.queues.depth(mapping.trigger.queue) == 1
    with Host(data, cache_dir=COMPILED) as host, Triggers(host, queue_idle_max_s=0.05):
        seen = lambda key: host.kv.get("seen", key)  # noqa: E731
        assert wait_for(lambda: seen("put:in/a.txt"), 60, "the put event").startswith(b"5:")
        assert wait_for(lambda: host.blobs.get("uploads", "out/a.txt"), 10, "the output") == b"first"
        copied = wait_for(lambda: host.blobs.get("uploads", "in/a.txt.copy"), 10, "the copy")
        assert copied == b"first"  # its own write to in/: not delivered to it (below)
        host.blobs.delete("uploads", "in/a.txt")
        assert wait_for(lambda: seen("delete:in/a.txt"), 20, "the delete event")
        time.sleep(0.5)
        assert seen("put:in/a.txt.copy") is None and seen("put:ignored/b") is None
        assert host.queues.depth(mapping.trigger.queue) == 0
        # A handler that keeps failing: delivered max_receive_count times, then dead-lettered.
        host.blobs.put("uploads", "in/x.fail", b"bad")
        dlq = mapping.trigger.dead_letter_queue
        wait_for(lambda: host.queues.depth(dlq) == 1, 90, "the dead letter")
        assert host.kv.get("seen", "attempts:in/x.fail") == b"2"
        assert json.loads(host.queues.peek(dlq, 1)[0].body)["key"] == "in/x.fail"


def test_a_blob_trigger_on_a_bucket_the_deployer_may_not_grant_is_refused(
    guest_host: Host, files_wasm: tuple[bytes, Any]
) -> None:
    wasm, manifest = files_wasm
    keys = guest_host.open_store(ApiKeys)
    _, token = keys.create("limited", ["deploy"], namespace="default", may_grant=["kv:seen", "blob:uploads"])
    principal = keys.authenticate(f"Bearer {token}")
    ok = {**manifest.to_dict(), "name": "watcher2", **TRIGGERED}
    assert guest_host.deploy("watcher2", wasm, ok, principal=principal).version == 1
    bad = {**ok, "triggers": {"blob": [{"bucket": "other-bucket"}]}}
    with pytest.raises(Forbidden, match="other-bucket"):
        guest_host.deploy("watcher2", wasm, bad, principal=principal)
    with pytest.raises(Forbidden, match="team-z/uploads"):  # another namespace's bucket, not shared
        guest_host.deploy("watcher2", wasm, {**ok, "triggers": {"blob": [{"bucket": "team-z/uploads"}]}})


# the HTTP API, streamed, under real Hypercorn --------------------------------------------------------------
@pytest.fixture(scope="module")
def blob_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    data = tmp_path_factory.mktemp("blob-api") / "data"
    with server(data, "--max-blob-bytes", str(8 * MiB), "--body-timeout", "2", "--no-triggers") as url:
        yield url, (data / "admin.key").read_text().strip(), data


def test_api_streams_objects_in_and_out(blob_server: tuple[str, str, Path]) -> None:
    url, admin, _ = blob_server
    auth = {"Authorization": f"Bearer {admin}"}
    data = bytes(range(256)) * (3 * 4096)  # 3 MiB, sent in 64 KiB chunks without a length
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    r = httpx.put(f"{url}/v1/blobs/uploads/in/x.bin", content=chunks, headers={**auth, "content-type": "image/png"})
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest() and r.json()["size"] == len(data)
    with httpx.stream("GET", f"{url}/v1/blobs/uploads/in/x.bin", headers=auth) as got:
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.headers["x-fnhost-sha256"] == hashlib.sha256(data).hexdigest()
        assert b"".join(got.iter_bytes()) == data
    listing = httpx.get(f"{url}/v1/blobs/uploads", params={"prefix": "in/"}, headers=auth).json()
    assert [o["key"] for o in listing["objects"]] == ["in/x.bin"] and listing["next"] is None
    assert httpx.delete(f"{url}/v1/blobs/uploads/in/x.bin", headers=auth).json()["deleted"] is True
    r = httpx.get(f"{url}/v1/blobs/uploads/in/x.bin", headers=auth)
    assert r.status_code == 404 and "fnhost blobs ls" in r.json()["error"]["message"]


def test_api_refuses_an_object_over_the_limit_while_it_streams(blob_server: tuple[str, str, Path]) -> None:
    url, admin, data_dir = blob_server
    auth = {"Authorization": f"Bearer {admin}"}
    chunks = (bytes(MiB) for _ in range(9))  # no Content-Length: counted as it streams
    r = httpx.put(f"{url}/v1/blobs/uploads/huge", content=chunks, headers=auth)
    assert r.status_code == 413 and "limit of 8388608 bytes" in r.json()["error"]["message"], r.text
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as s:  # declared too large: refused before any byte
        s.sendall(
            f"PUT /v1/blobs/uploads/huge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
            f"Content-Length: {9 * MiB}\r\n\r\n".encode()
        )
        assert b" 413 " in s.recv(65536).split(b"\r\n")[0]
    assert httpx.get(f"{url}/v1/blobs/uploads/huge", headers=auth).status_code == 404
    assert list((data_dir / "blobs").glob(".tmp-*")) == []


def test_api_cuts_off_a_slow_uploader_and_stores_nothing(blob_server: tuple[str, str, Path]) -> None:
    url, admin, data_dir = blob_server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"PUT /v1/blobs/uploads/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        s.settimeout(15)
        response = b""
        for _ in range(12):  # a byte a second: far under 1 MiB/s, past the 2 s body timeout
            try:
                s.sendall(b"1\r\nx\r\n")
            except OSError:
                break
            time.sleep(0.5)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                response += s.recv(65536)
            s.setblocking(True)
            s.settimeout(15)
            if response:
                break
    assert b" 408 " in response.split(b"\r\n")[0], response[:200]
    auth = {"Authorization": f"Bearer {admin}"}
    assert httpx.get(f"{url}/v1/blobs/uploads/slow", headers=auth).status_code == 404
    assert list((data_dir / "blobs").glob(".tmp-*")) == []


def test_api_answers_range_and_conditional_requests(blob_server: tuple[str, str, Path]) -> None:
    url, admin, _ = blob_server
    auth = {"Authorization": f"Bearer {admin}"}
    data = bytes(range(256)) * 40  # 10,240 bytes
    sha = hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{url}/v1/blobs/uploads/r.bin", content=data, headers=auth).status_code == 201
    obj = f"{url}/v1/blobs/uploads/r.bin"

    def get(range_: str | bytes | None = None, method: str = "GET", **headers: str) -> httpx.Response:
        extra = {"range": range_} if range_ is not None else {}
        return httpx.request(method, obj, headers={**auth, **extra, **headers})

    for spec, (start, end) in {
        "bytes=0-99": (0, 100),
        "bytes=10000-": (10000, 10240),
        "bytes=-40": (10200, 10240),
        "bytes=10200-99999999999999999999": (10200, 10240),  # past the end: up to the end
        "bytes=-99999": (0, 10240),
        "Bytes=5-5": (5, 6),  # the unit is case-insensitive
    }.items():
        r = get(spec)
        assert r.status_code == 206, (spec, r.status_code, r.text)
        assert r.content == data[start:end], spec
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/10240", spec
        assert r.headers["content-length"] == str(end - start) and r.headers["accept-ranges"] == "bytes"
    head = get("bytes=0-9", method="HEAD")
    assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""
    # several ranges, another unit, malformed, reversed: the whole object (RFC 9110 lets a server ignore them)
    for spec in ["bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=9-3", "bytes=-", "bytes=\u0661-\u0662".encode()]:
        r = get(spec)
        assert r.status_code == 200 and r.content == data, spec
    for spec in ["bytes=10240-", "bytes=20000-20001", "bytes=-0"]:
        r = get(spec)
        assert r.status_code == 416, spec
        assert r.headers["content-range"] == "bytes */10240"
        assert r.json()["error"]["code"] == "range_not_satisfiable" and "10240" in r.json()["error"]["message"]
    # conditional: the sha256 is the ETag
    assert get().headers["etag"] == f'"{sha}"'
    assert get(**{"if-none-match": f'"{sha}"'}).status_code == 304
    assert get(**{"if-none-match": f'W/"{sha}", "other"'}).status_code == 304
    assert get(**{"if-none-match": '"other"'}).content == data
    assert get("bytes=0-1", **{"if-range": f'"{sha}"'}).status_code == 206
    stale = get("bytes=0-1", **{"if-range": '"old"'})  # the object changed since: all of it
    assert stale.status_code == 200 and stale.content == data


def test_a_damaged_object_is_never_downloaded_whole(blob_server: tuple[str, str, Path], tmp_path: Path) -> None:
    url, admin, data_dir = blob_server
    auth = {"Authorization": f"Bearer {admin}"}
    data = bytes(range(256)) * (3 * 4096)  # 3 MiB: three reads
    sha = hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{url}/v1/blobs/uploads/bad.bin", content=data, headers=auth).status_code == 201
    stored = data_dir / "blobs" / sha
    damaged = bytearray(stored.read_bytes())
    damaged[5] ^= 1
    stored.write_bytes(bytes(damaged))
    received = b""
    with pytest.raises(httpx.TransportError), httpx.stream("GET", f"{url}/v1/blobs/uploads/bad.bin", headers=auth) as r:
        assert r.status_code == 200  # the damage shows only at the end: the download stops short
        for chunk in r.iter_bytes():
            received += chunk
    assert len(received) < len(data)
    # the CLI (through fnhost.Client) says so and leaves no file
    out = tmp_path / "bad.bin"
    done = fnhost("blobs", "get", "uploads", "bad.bin", "-o", str(out), env=_env(FNHOST_URL=url, FNHOST_TOKEN=admin), check=False)
    assert done.returncode != 0 and "incomplete_download" in done.stderr and "stopped after" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".bad.bin*"))
    # a range of it is served (only the whole object has a digest to check)
    r = httpx.get(f"{url}/v1/blobs/uploads/bad.bin", headers={**auth, "range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]


def test_api_authorizes_like_queues_and_refuses_bad_names(blob_server: tuple[str, str, Path]) -> None:
    url, admin, _ = blob_server
    auth = {"Authorization": f"Bearer {admin}"}

    def key(**body: Any) -> str:
        r = httpx.post(f"{url}/v1/keys", json={"name": "t", **body}, headers=auth)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    invoker = {"Authorization": f"Bearer {key(scopes=['invoke'])}"}
    other_admin = {"Authorization": f"Bearer {key(scopes=['admin'], namespace='team-c')}"}
    assert httpx.put(f"{url}/v1/blobs/uploads/k", content=b"v", headers=auth).status_code == 201
    assert httpx.get(f"{url}/v1/blobs/uploads/k", headers=invoker).status_code == 403
    assert httpx.put(f"{url}/v1/blobs/uploads/k", content=b"x", headers=invoker).status_code == 403
    assert httpx.get(f"{url}/v1/blobs/uploads/k", headers=other_admin).status_code == 403
    assert httpx.get(f"{url}/v1/namespaces/team-c/blobs/uploads/k", headers=other_admin).status_code == 404
    r = httpx.put(f"{url}/v1/namespaces/team-c/blobs/uploads/k", content=b"c", headers=other_admin)
    assert r.status_code == 201 and r.json()["bucket"] == "uploads"
    assert httpx.get(f"{url}/v1/blobs/uploads/k", headers=auth).content == b"v"
    assert httpx.get(f"{url}/v1/blobs/uploads", headers={"Authorization": "Bearer nope"}).status_code == 401
    for bad in ("a%2F..%2Fb", "nul%00", "x/%2e%2e/y"):
        r = httpx.put(f"{url}/v1/blobs/uploads/{bad}", content=b"x", headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", (bad, r.text)
    r = httpx.put(f"{url}/v1/blobs/up..loads!/k", content=b"x", headers=auth)
    assert r.status_code == 400 and "bucket name" in r.json()["error"]["message"]


@pytest.mark.parametrize("lang", ["rust", "go", "c", "js"])
def test_every_sdk_streams_an_object_through_handles(guest_host: Host, lang: str) -> None:
    """The counter example of each language copies an object in 64 KiB reads and writes (blob-copy),
    then stats, deletes and lists through its SDK."""
    built = build_or_skip(GUESTS / lang / "counter")
    grants = dataclasses.replace(built.manifest.grants, by_key={**built.manifest.grants.by_key, "blobs": ("uploads",)})
    name = f"blob-{lang}"
    guest_host.deploy(name, built.wasm_path.read_bytes(), dataclasses.replace(built.manifest, name=name, grants=grants))
    data = bytes(range(256)) * 800 + b"tail"  # 204,804 bytes: four 64 KiB chunks
    bucket_keys = {i.key for i in guest_host.blobs.list("uploads")}
    guest_host.blobs.put("uploads", f"{lang}/src", data)
    out = call(guest_host, name, op="blob-copy", bucket="uploads", key=f"{lang}/src", prefix=f"{lang}/dst")
    assert out["size"] == len(data) and out["sha256"] == hashlib.sha256(data).hexdigest(), out
    assert out["content_type"] == "application/x-copy" and out["stat_agrees"] is True
    assert set(out["keys"]) == bucket_keys | {f"{lang}/dst"}
    assert guest_host.blobs.get("uploads", f"{lang}/dst") == data
    assert guest_host.blobs.stat("uploads", f"{lang}/src") is None
    missing = call(guest_host, name, op="blob-copy", bucket="uploads", key=f"{lang}/src", prefix=f"{lang}/x")
    assert missing["error"] == "not-found"
    denied = call(guest_host, name, op="blob-copy", bucket="elsewhere", key="k", prefix="x")
    assert denied["error"] == "denied" and "blob bucket 'elsewhere'" in denied["message"]


def test_cli_puts_gets_lists_and_removes_through_the_api(blob_server: tuple[str, str, Path], tmp_path: Path) -> None:
    url, admin, _ = blob_server
    env = _env(FNHOST_URL=url, FNHOST_TOKEN=admin)
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n" * 100_000)  # 400 KB, streamed in 1 MiB reads
    out = fnhost("blobs", "put", "uploads", "cli/report.csv", str(source), env=env).stdout
    assert f"400000 bytes, sha256 {hashlib.sha256(source.read_bytes()).hexdigest()}" in out
    fnhost("blobs", "get", "uploads", "cli/report.csv", "-o", str(tmp_path / "back.csv"), env=env)
    assert (tmp_path / "back.csv").read_bytes() == source.read_bytes()
    listing = json.loads(fnhost("blobs", "ls", "uploads", "--prefix", "cli/", "--json", env=env).stdout)
    assert [(o["key"], o["content_type"]) for o in listing["objects"]] == [("cli/report.csv", "text/csv")]
    assert "cli/report.csv" in fnhost("blobs", "ls", "uploads", env=env).stdout
    assert "deleted" in fnhost("blobs", "rm", "uploads", "cli/report.csv", env=env).stdout
    missing = fnhost("blobs", "get", "uploads", "cli/report.csv", "-o", str(tmp_path / "gone"), env=env, check=False)
    assert missing.returncode != 0 and "has no object" in missing.stderr and not (tmp_path / "gone").exists()
