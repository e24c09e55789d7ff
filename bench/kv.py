"""kv increment ops/s, in one run: at the store and through guests, with 1 and 2 threads.

    python bench/kv.py [--ops N] [--postgres DSN]

Store rows: `SQLiteKVStore.increment` on a fresh SQLite file (and on PostgreSQL with --postgres),
next to the read-modify-write it replaces (`get` + `set`, which loses updates under concurrency:
the row shows how many). Guest rows: the counter example (`{"op": "incr"}`, one `kv.increment` per
invocation, warm instances) in Rust (core module) and Python (component), two functions granted one
bucket, one thread each; the final count is checked against the number of invocations.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.stores import Database, PostgresDatabase, SQLiteKVStore  # noqa: E402
from fnhost.stores.database import AnyDatabase  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


def threaded(threads: int, ops: int, op: Callable[[int], object]) -> float:
    """ops/s of `op(thread index)` called `ops` times in total, split over `threads` threads."""
    barrier = threading.Barrier(threads + 1)

    def body(i: int) -> None:
        barrier.wait()
        for _ in range(ops // threads):
            op(i)

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return ops / (time.perf_counter() - started)


def store_rows(label: str, open_db: Callable[[], AnyDatabase], ops: int) -> None:
    stores = [SQLiteKVStore(open_db()), SQLiteKVStore(open_db())]  # one handle per thread, as two nodes

    def rmw(i: int) -> None:
        kv = stores[i]
        kv.set("b", "rmw", str(int(kv.get("b", "rmw") or b"0") + 1).encode())

    for threads in (1, 2):
        stores[0].delete("b", "inc")
        stores[0].delete("b", "rmw")
        inc = threaded(threads, ops, lambda i: stores[i].increment("b", "inc", 1))
        plain = threaded(threads, ops, rmw)
        lost = ops - int(stores[0].get("b", "rmw") or b"0")
        counted = int(stores[0].get("b", "inc") or b"0")
        print(
            f"{label:<10} {threads} thread{'s' if threads > 1 else ' '}  increment {inc:8.0f} ops/s (count {counted}"
            f"/{ops})   get+set {plain:8.0f} ops/s (lost {lost} updates)"
        )


def guest_rows(ops: int) -> None:
    for lang in ("rust", "python"):
        built = build_guest(ROOT / "guests" / lang / "counter")
        with tempfile.TemporaryDirectory() as tmp, Host(Path(tmp) / "data", cache_dir=CACHE / "compiled") as host:
            limits = dataclasses.replace(built.manifest.limits, instance_reuse=100_000)
            names = ("counter-a", "counter-b")
            for name in names:
                manifest = dataclasses.replace(built.manifest, name=name, limits=limits)
                host.deploy(name, built.wasm_path.read_bytes(), manifest)
            for name in names:  # warm up
                host.invoke(name, b'{"op": "incr", "key": "warm"}')
            rate = threaded(
                2, ops, lambda i, h=host: h.invoke(("counter-a", "counter-b")[i], b'{"op": "incr", "key": "n"}')
            )
            count = int(host.kv.get("counters", "n") or b"0")
            print(f"{lang + ' guest':<14} 2 functions x 1 thread each  {rate:8.0f} invocations/s (count {count}/{ops})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--postgres", help="a PostgreSQL DSN to run the store rows on too")
    args = parser.parse_args()
    print(f"fnhost bench/kv.py — {os.cpu_count()} cores, {args.ops} increments per row")
    with tempfile.TemporaryDirectory() as tmp:
        store_rows("sqlite", lambda: Database(Path(tmp) / "kv.db"), args.ops)
    if args.postgres:
        store_rows("postgresql", lambda: PostgresDatabase(args.postgres), args.ops)
    guest_rows(args.ops)


if __name__ == "__main__":
    main()
