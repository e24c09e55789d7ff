"""What usage rollups cost the invocation recorder: round trips and time per batch, with and without.

    .venv/bin/python bench/usage.py [--postgres] [--batches 50] [--batch 100] [--functions 5]

Records BATCHES batches of BATCH invocation records (spread over FUNCTIONS functions) through the
host's `InvocationRecorder`, once without the usage store and once with it, each on a fresh SQLite
file (`--postgres`: a fresh database of a PostgreSQL server started as the test suite starts one);
prints the median time per batch and, on PostgreSQL, the database round trips per batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

from fnhost.recorder import InvocationRecorder  # noqa: E402
from fnhost.stores import InvocationRecord, InvocationStore  # noqa: E402
from fnhost.stores.database import PostgresDatabase, open_database  # noqa: E402
from fnhost.stores.usage import UsageStore  # noqa: E402


def record(i: int, functions: int) -> InvocationRecord:
    return InvocationRecord(
        id=f"{i:032x}", function=f"f{i % functions}", version=1, trigger="invoke", outcome="ok", error=None,
        started_at=time.time(), duration_ms=1.0 + i % 50, billed_ms=2 + i % 50, fuel_consumed=1000,
        memory_used_bytes=0, memory_limit_mb=128, logs="", report="REPORT ...",
    )  # fmt: skip


def run(target: str, with_usage: bool, batches: int, size: int, functions: int, offset: int) -> tuple[float, float]:
    db = open_database(target)
    store = InvocationStore(db)
    recorder = InvocationRecorder(store, UsageStore(db) if with_usage else None, interval_s=3600)
    times, trips = [], []
    try:
        for b in range(batches + 1):
            for i in range(size):
                recorder.record(record(offset + b * size + i, functions))
            before = db.round_trips_of_this_thread if isinstance(db, PostgresDatabase) else 0
            start = time.perf_counter()
            recorder.flush()
            if b:  # the first batch also counts the table's bytes once: left out
                times.append(time.perf_counter() - start)
                trips.append((db.round_trips_of_this_thread if isinstance(db, PostgresDatabase) else 0) - before)
    finally:
        recorder.close()
        db.close()
    return statistics.median(times) * 1000, statistics.median(trips)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres", action="store_true", help="on PostgreSQL (default: SQLite files in a temporary directory)")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--functions", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        new_database: Callable[[int], str] = lambda n: str(Path(tmp) / f"bench-{n}.db")  # noqa: E731
        if args.postgres:
            from postgres_server import PostgresServer

            server = PostgresServer()
            new_database = lambda n: server.new_database()  # noqa: E731
        try:
            print(f"{'backend':<11} {'usage':<8} {'ms/batch':>9} {'round trips/batch':>18}   "
                  f"({args.batch} records over {args.functions} functions)")  # fmt: skip
            for n, with_usage in enumerate((False, True)):
                ms, trips = run(new_database(n), with_usage, args.batches, args.batch, args.functions, n * 10**9)
                shown = f"{trips:.0f}" if args.postgres else "-"
                backend = "postgresql" if args.postgres else "sqlite"
                print(f"{backend:<11} {'with' if with_usage else 'without':<8} {ms:>9.2f} {shown:>18}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
