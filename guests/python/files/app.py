"""Files: blob objects in the bucket `uploads`, and what arrives there (a blob trigger).

Event (direct invoke), JSON {"op": ..., "bucket": b (default uploads), "key": k, ...}:
  put {"data": text, "content_type": t, "repeat": n}  → the object's info (data written `repeat` times, streamed)
  get → {"data": text}     stat → info or {"missing": true}     list {"prefix": p} → {"keys": [...]}
  delete → {}   copy {"to": k2} → info (streamed through a 64 KiB buffer)
  sum → {"size": n, "sha256": hex} (streamed in 1 MiB reads: the object never held whole)
  leak {"key": k} → opens a write and a read and returns without closing them
  fill {"mb": n} → writes n MiB of zeros to `key` (big objects, the size limit)
  handles → opens read handles until the host says no
Blob trigger (`[[triggers.blob]]` set at deploy): records each change in kv `seen` under
"<event>:<key>" = "<size>:<sha256>:<receive_count>"; a put under "in/" is copied to "out/<rest>",
and to "in/<rest>.copy" (a write to the prefix that triggered it: the host does not deliver the
function its own writes). A key ending in ".fail" fails the handler (redelivery, then dead letter).
A host error is answered as {"error": code, "message": ...}.
"""

import hashlib
import json
import time

from fnhost_sdk import App, BlobChange, Context, Event, HostError, Invoke, blobs, kv

BUCKET = "uploads"
LEAKED: list[object] = []  # handles kept past the invocation that opened them (the host closes them)
app = App()


def info(i: blobs.ObjectInfo | None) -> dict[str, object]:
    if i is None:
        return {"missing": True}
    return {"key": i.key, "size": i.size, "sha256": i.sha256, "content_type": i.content_type,
            "created_unix_ms": i.created_unix_ms, "updated_unix_ms": i.updated_unix_ms}


def run(op: str, bucket: str = BUCKET, key: str = "", **args: object) -> dict[str, object]:
    if op == "put":
        data = str(args.get("data", "")).encode()
        repeat = int(args.get("repeat", 1))
        return info(blobs.put(bucket, key, (data for _ in range(repeat)), content_type=args.get("content_type")))
    if op == "get":
        value = blobs.get(bucket, key)
        return {"missing": True} if value is None else {"data": value.decode("utf-8", "replace")}
    if op == "stat":
        return info(blobs.stat(bucket, key))
    if op == "list":
        return {"keys": blobs.list(bucket, prefix=str(args.get("prefix", "")))}
    if op == "delete":
        blobs.delete(bucket, key)
        return {}
    if op == "copy":
        with blobs.open(bucket, key) as src, blobs.open(bucket, str(args["to"]), "wb") as dst:
            while chunk := src.read(65536):
                dst.write(chunk)
        return info(dst.info)
    if op == "sum":
        digest, size = hashlib.sha256(), 0
        with blobs.open(bucket, key) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest()}
    if op == "fill":
        zeros = bytes(1 << 20)
        return info(blobs.put(bucket, key, (zeros for _ in range(int(args["mb"])))))
    if op == "calls":  # host-call cost: n stat calls, then n writes of `size` bytes, timed in the guest
        n, size = int(args.get("n", 100)), int(args.get("size", 0))
        t0 = time.perf_counter()
        for _ in range(n):
            blobs.stat(bucket, key)
        t1 = time.perf_counter()
        chunk = bytes(size)
        with blobs.open(bucket, key, "wb") as w:
            for _ in range(n):
                w.write(chunk)
        t2 = time.perf_counter()
        return {"stat_ms": (t1 - t0) * 1000 / n, "write_ms": (t2 - t1) * 1000 / n}
    if op == "leak":
        w = blobs.open(bucket, key, "wb")
        w.write(b"never finished")
        LEAKED.extend([w, blobs.open(bucket, str(args.get("read", key)))])
        return {"leaked": 2}
    if op == "handles":
        opened = []
        try:
            while True:
                opened.append(blobs.open(bucket, key))
        except HostError as e:
            return {"opened": len(opened), "error": e.code, "message": e.message}
    raise ValueError(f"unknown op {op!r}")


def on_change(change: BlobChange) -> dict[str, object]:
    if change.key.endswith(".fail"):
        kv.increment("seen", f"attempts:{change.key}")
        raise RuntimeError(f"cannot process {change.key}")
    kv.set("seen", f"{change.event}:{change.key}", f"{change.size}:{change.sha256}:{change.receive_count}")
    if change.event == "put" and change.key.startswith("in/"):
        rest = change.key[3:]
        with blobs.open(change.bucket, change.key) as src:
            data = src.read()
        blobs.put(change.bucket, f"out/{rest}", data)
        blobs.put(change.bucket, f"in/{rest}.copy", data)
    return {"handled": change.key}


@app.event
def handle(event: Event, ctx: Context) -> dict[str, object]:
    if isinstance(event, BlobChange):
        return on_change(event)
    assert isinstance(event, Invoke)
    try:
        return run(**json.loads(event.payload))
    except HostError as e:
        return {"error": e.code, "message": e.message}


WitWorld = app.world()
