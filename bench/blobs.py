"""Blob put/get throughput in one run, side by side: the store, the HTTP API, a guest.

    python bench/blobs.py [--sizes-mb 1,100] [--guest-sizes-mb 1,10] [--repeat 3]

Rows (MB/s, best of --repeat; ratios against the row above it):
- raw files: write + fsync + rename of a temp file, read back with sha256 — what the store must do anyway;
- store: `BlobStore.put` (streamed in 1 MiB writes) / `BlobStore.get`, on the embedded default (files);
- API: PUT / GET /v1/blobs/... against a real `fnhost serve` on loopback, streamed both ways (httpx);
- guest (py): the Python example `guests/python/files` (component) writing zeros in 1 MiB writes
  (`fill`) and reading in 1 MiB reads while hashing (`sum`), warm instance, Cranelift code; then
  the same reads of random bytes, and a `copy` of them through a 64 KiB buffer (read + write);
- guest (rust): the Rust counter (core module) copying an object in 64 KiB reads and writes, then
  reading the copy whole (`blob-copy`): MB/s of object moved through the core ABI (read + write + read).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

import httpx  # noqa: E402

from fnhost import Host, Outcome  # noqa: E402
from fnhost.build import build_guest  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
MB = 1_000_000
CHUNK = 1 << 20


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def row(label: str, size: int, put_s: float, get_s: float, base: tuple[float, float] | None) -> tuple[float, float]:
    put, get = size / put_s / MB, size / get_s / MB
    ratio = f" | vs above put {put / base[0]:.2f}x get {get / base[1]:.2f}x" if base else ""
    print(f"{size // MB:>4} MB {label:<10} put {put:8.1f} MB/s  get {get:8.1f} MB/s{ratio}", flush=True)
    return put, get


def raw_files(directory: Path, data: bytes) -> tuple[Callable[[], object], Callable[[], object]]:
    def put() -> None:
        tmp = directory / ".tmp-raw"
        with open(tmp, "wb") as f:
            for i in range(0, len(data), CHUNK):
                f.write(data[i : i + CHUNK])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / "raw")

    def get() -> None:
        digest = hashlib.sha256()
        with open(directory / "raw", "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)

    return put, get


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", default="1,100")
    parser.add_argument("--guest-sizes-mb", default="1,10")
    parser.add_argument("--rust-sizes-mb", default="10,100")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) * MB for s in args.sizes_mb.split(",")]
    guest_sizes = [int(s) * MB for s in args.guest_sizes_mb.split(",") if s]
    rust_sizes = [int(s) * MB for s in args.rust_sizes_mb.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="fnhost-bench-blobs-"))
    host = Host(work / "data", cache_dir=CACHE / "compiled")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "host")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "fnhost", "serve", "--port", str(port), "--data-dir", str(work / "api"),
         "--cache-dir", str(CACHE / "compiled"), "--no-triggers"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {(work / 'api' / 'admin.key').read_text().strip()}"}
        print(f"fnhost bench/blobs.py — best of {args.repeat}, {os.cpu_count()} cores")
        for size in sizes:
            data = os.urandom(size)
            put, get = raw_files(work, data)
            base = row("raw files", size, best(args.repeat, put), best(args.repeat, get), None)
            chunks = [data[i : i + CHUNK] for i in range(0, size, CHUNK)]
            store = row(
                "store",
                size,
                best(args.repeat, lambda chunks=chunks: host.blobs.put("bench", "obj", iter(chunks))),
                best(args.repeat, lambda: host.blobs.get("bench", "obj")),
                base,
            )

            def api_put(chunks: list[bytes] = chunks) -> None:
                r = httpx.put(f"{url}/v1/blobs/bench/obj", content=iter(chunks), headers=auth, timeout=600)
                assert r.status_code == 201, r.text

            def api_get(size: int = size) -> None:
                with httpx.stream("GET", f"{url}/v1/blobs/bench/obj", headers=auth, timeout=600) as r:
                    assert sum(len(c) for c in r.iter_bytes(CHUNK)) == size

            row("API", size, best(args.repeat, api_put), best(args.repeat, api_get), store)
        if guest_sizes:
            built = build_guest(ROOT / "guests" / "python" / "files")
            limits = dataclasses.replace(built.manifest.limits, timeout_ms=900_000, instance_reuse=1000,
                                         max_host_bytes=1 << 40, memory_mb=512)  # fmt: skip
            host.deploy("files", built.wasm_path.read_bytes(), dataclasses.replace(built.manifest, limits=limits))
            host.wait_for_tier_up(300)

            def invoke(**op: object) -> None:
                r = host.invoke("files", json.dumps(op).encode())
                assert r.outcome is Outcome.OK and b"error" not in r.output, (r.error, r.output[:200])

            for size in guest_sizes:
                mib = size // CHUNK + (1 if size % CHUNK else 0)
                put_s = best(args.repeat, lambda mib=mib: invoke(op="fill", key="obj", mb=mib))
                get_s = best(args.repeat, lambda: invoke(op="sum", key="obj"))
                actual = mib * CHUNK
                put, get = actual / put_s / MB, actual / get_s / MB
                print(f"{size // MB:>4} MB {'guest (py)':<10} put {put:8.1f} MB/s  get {get:8.1f} MB/s", flush=True)
                host.blobs.put("uploads", "random", os.urandom(size))  # not ASCII: chunks cross as base64
                get_s = best(args.repeat, lambda: invoke(op="sum", key="random"))
                copy_s = best(args.repeat, lambda: invoke(op="copy", key="random", to="random-copy"))
                print(f"{size // MB:>4} MB {'guest (py)':<10} random bytes: get {size / get_s / MB:8.1f} MB/s  "
                      f"copy {size / copy_s / MB:8.1f} MB/s (object size over read + write time)", flush=True)  # fmt: skip
        if rust_sizes:
            built = build_guest(ROOT / "guests" / "rust" / "counter")
            limits = dataclasses.replace(built.manifest.limits, timeout_ms=900_000, max_host_bytes=1 << 40,
                                         max_host_calls=10_000_000, memory_mb=1024)  # fmt: skip
            granted = {**built.manifest.grants.by_key, "blobs": ("bench",)}
            grants = dataclasses.replace(built.manifest.grants, by_key=granted)
            manifest = dataclasses.replace(built.manifest, name="copier", limits=limits, grants=grants)
            host.deploy("copier", built.wasm_path.read_bytes(), manifest)
            for size in rust_sizes:
                data, times = os.urandom(size), []
                op = json.dumps({"op": "blob-copy", "bucket": "bench", "key": "src", "prefix": "dst"}).encode()
                for _ in range(args.repeat):
                    host.blobs.put("bench", "src", data)
                    t0 = time.perf_counter()
                    r = host.invoke("copier", op)
                    times.append(time.perf_counter() - t0)
                    assert r.outcome is Outcome.OK and b"error" not in r.output, (r.error, r.output[:200])
                copy_s = min(times)
                moved = 3 * size / copy_s / MB
                print(f"{size // MB:>4} MB {'guest (rs)':<10} moved {moved:8.1f} MB/s (read + write + read back: {copy_s:.2f} s)")
    finally:
        serve.terminate()
        serve.wait(10)
        host.close()


if __name__ == "__main__":
    main()
