"""Messages per second through a queue trigger, for several batch sizes and poller counts, in one run.

    python bench/queue_triggers.py [--messages N] [--batch-sizes 1,10,100] [--pollers 1,2,4] [--postgres]
                                   [--instance-reuse N] [--guest python|c]

For each batch size and poller count: a fresh data dir (SQLite, or with `--postgres` a fresh
database on a PostgreSQL server this script starts, as the test suite does), the Python `hello`
component deployed with a `[[triggers.queue]]` mapping (its event handler returns at once and acks
the whole batch), N messages published up front, then `Triggers` started; the clock runs from start
from the first ack (threads started, the first instance made, statements prepared: the steady state)
until every message is acked (the host process's CPU time is measured over the same span: on a shared
machine it moves less than the wall clock). Each row runs at least 100 batches (more messages than
`--messages` when the batch is large). Each poller receives (one claim statement), invokes once per batch
(fresh instance) and acks (one statement, sent by its ack thread while it goes on). Printed per
row: msg/s, the ratio to the first poller count of that batch size, and with `--postgres` the
database round trips per batch (every thread of the process: receives, acks, invocation records).
`--guest c` runs the C hello instead (a core module: a fresh instance costs ~0.1 ms, not a Python
interpreter's start), so the rate is more the trigger's and the store's than the guest's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.triggers import Triggers  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
KEY = bytes(range(32))  # a fixed master key: PostgreSQL databases are fresh each run


def run(
    batch_size: int, messages: int, wasm: bytes, manifest: dict[str, object], *, database: str | None = None,
    master_key: bytes | None = None, pollers: int = 1, instance_reuse: int = 0,
) -> tuple[float, int, float | None, float]:
    """(msg/s, invocations, database round trips per batch or None on SQLite, this process's CPU µs per
    message) through one queue trigger with `pollers` pollers; on SQLite in a temp dir, or on `database`."""
    messages = max(messages, 100 * batch_size)
    with tempfile.TemporaryDirectory() as tmp, Host(
        Path(tmp) / "data", cache_dir=CACHE / "compiled", database=database, master_key=master_key
    ) as host:
        trigger = {"queue": "bench", "batch_size": batch_size, "visibility_timeout_s": 60}
        if pollers != 1:
            trigger["pollers"] = pollers
        limits = dict(manifest.get("limits") or {})  # type: ignore[call-overload]  # a manifest's table
        if instance_reuse:
            limits["instance_reuse"] = instance_reuse
        host.deploy("hello", wasm, {**manifest, "limits": limits, "triggers": {"queue": [trigger]}})
        host.wait_for_tier_up()  # the Cranelift code (a first run compiles it; later runs load it from the cache)
        for i in range(messages):
            host.queues.publish("bench", f"message {i}".encode())
        db = host.open_store(lambda db: db)
        acked, all_acked, lock = [0], threading.Event(), threading.Lock()
        first: list[tuple[int, float, float, int]] = []  # (acked, clock, CPU, round trips) at the first ack

        def on_ack(queue: str, ids: list[str]) -> None:  # after each ack commits (no polling of the queue's depth)
            with lock:
                acked[0] += len(ids)
                if not first:
                    first.append((acked[0], time.perf_counter(), time.process_time(), getattr(db, "round_trips", 0)))
                if acked[0] >= messages:
                    all_acked.set()

        triggers = Triggers(host, queue_idle_max_s=0.01, on_ack=on_ack)
        triggers.start()
        all_acked.wait(600)
        ended, cpu_ended = time.perf_counter(), time.process_time()
        triggers.stop()
        if host.queues.depth("bench"):
            raise SystemExit(f"batch size {batch_size}: the queue did not drain within 600 s")
        counted, started, cpu_started, round_trips = first[0]
        counted = messages - counted  # the steady state: from the first ack (threads started, statements prepared)
        per_batch = None if not hasattr(db, "round_trips") else (db.round_trips - round_trips) / (counted / batch_size)
        invocations = len(host.invocations.list("hello", limit=1000))
        return counted / (ended - started), invocations, per_batch, (cpu_ended - cpu_started) * 1e6 / counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="1,10,100")
    parser.add_argument("--pollers", default="1", help="poller counts to compare, e.g. 1,2,4")
    parser.add_argument("--instance-reuse", type=int, default=0, help="the function's limits.instance_reuse (0: fresh)")
    parser.add_argument("--postgres", action="store_true", help="on a PostgreSQL server of its own, not SQLite")
    parser.add_argument("--guest", choices=("python", "c"), default="python", help="which hello to run (default python)")
    args = parser.parse_args()
    built = build_guest(ROOT / "guests" / args.guest / "hello")
    wasm, manifest = built.wasm_path.read_bytes(), built.manifest.to_dict()
    with ExitStack() as stack:
        new_database: Callable[[], str | None] = lambda: None  # noqa: E731
        if args.postgres:
            sys.path.append(str(ROOT / "tests"))
            from postgres_server import PostgresServer

            server = PostgresServer()
            stack.callback(server.stop)
            new_database = server.new_database
        backend = "postgresql" if args.postgres else "sqlite"
        instances = f"warm instances (instance_reuse={args.instance_reuse})" if args.instance_reuse else "fresh instances"
        guest = "python hello component" if args.guest == "python" else "C hello core module"
        print(f"queue trigger -> {guest}, {args.messages} messages (100 batches at least), {backend}, {instances}")
        print(f"{'batch size':>10}  {'pollers':>7}  {'messages/s':>10}  {'ratio':>5}  {'invocations':>11}"
              f"  {'per message':>11}  {'cpu/message':>11}  {'round trips/batch':>17}")  # fmt: skip
        for size in (int(s) for s in args.batch_sizes.split(",")):
            first = None
            for pollers in (int(p) for p in args.pollers.split(",")):
                rate, invocations, trips, cpu_us = run(
                    size, args.messages, wasm, manifest, database=new_database(), master_key=KEY, pollers=pollers,
                    instance_reuse=args.instance_reuse,
                )
                first = first or rate
                shown = f"{invocations}" if invocations < 1000 else ">=1000"
                trips_shown = "-" if trips is None else f"{trips:.1f}"
                print(f"{size:>10}  {pollers:>7}  {rate:>10,.0f}  {rate / first:>4.2f}x  {shown:>11}"
                      f"  {1e6 / rate:>8,.0f} us  {cpu_us:>8,.0f} us  {trips_shown:>17}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
