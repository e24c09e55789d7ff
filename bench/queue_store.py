"""A queue batch's parts, one after the other in one thread: receive, invoke, ack — on a deep queue.

    python bench/queue_store.py [--postgres] [--guest c|python] [--instance-reuse N] [--messages 20000] [--batch 10]

No trigger and no threads of its own: `--messages` messages are published, then the loop receives a
batch (`QueueStore.receive`), invokes the function with it (`Host.invoke_event`) and acks it
(`QueueStore.ack_many`) until the queue is empty; printed are the mean milliseconds per batch of each
part and the messages per second. Where bench/queue_triggers.py gives the rate a poller reaches,
this says where a batch's time goes. With `--postgres` (a server of its own, as the tests start
one) the loop runs twice on fresh databases, alternated: as the stores run (psycopg prepares a
statement from its 5th run) and with preparing off (every statement parsed and planned anew).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.runtime import abi  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
KEY = bytes(range(32))


def run(args: argparse.Namespace, wasm: bytes, manifest: dict[str, object], database: str | None, prepare: bool) -> str:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Host(Path(tmp) / "data", cache_dir=CACHE / "compiled", database=database, master_key=KEY) as host,
    ):
        limits = dict(manifest.get("limits") or {})  # type: ignore[call-overload]  # a manifest's table
        if args.instance_reuse:
            limits["instance_reuse"] = args.instance_reuse
        host.deploy("hello", wasm, {**manifest, "name": "hello", "limits": limits})
        host.wait_for_tier_up()
        for i in range(args.messages):
            host.queues.publish("bench", f"message {i}".encode())
        if not prepare:
            host.open_store(lambda db: db).db.conn.prepare_threshold = None  # this thread's connection
        spent = {"receive": 0.0, "invoke": 0.0, "ack": 0.0}
        batches, started = 0, time.perf_counter()
        while True:
            t0 = time.perf_counter()
            messages = host.queues.receive("bench", args.batch, 60)
            t1 = time.perf_counter()
            if not messages:
                break
            event = abi.QueueBatch(tuple(abi.BatchMessage(m.id, "bench", m.body, m.receive_count) for m in messages))
            host.invoke_event("hello", event, trigger="queue")
            t2 = time.perf_counter()
            host.queues.ack_many("bench", messages)
            t3 = time.perf_counter()
            spent["receive"] += t1 - t0
            spent["invoke"] += t2 - t1
            spent["ack"] += t3 - t2
            batches += 1
        rate = args.messages / (time.perf_counter() - started)
        parts = "  ".join(f"{k} {v * 1000 / batches:6.3f} ms" for k, v in spent.items())
        return f"{rate:8,.0f} msg/s  per batch: {parts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--guest", choices=("python", "c"), default="c")
    parser.add_argument("--instance-reuse", type=int, default=0)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    built = build_guest(ROOT / "guests" / args.guest / "hello")
    wasm, manifest = built.wasm_path.read_bytes(), built.manifest.to_dict()
    print(f"{args.messages} messages, batch {args.batch}, the {args.guest} hello, one thread, "
          f"{'postgresql' if args.postgres else 'sqlite'}")  # fmt: skip
    if not args.postgres:
        print(f"{'sqlite':<22}{run(args, wasm, manifest, None, True)}")
        return
    from postgres_server import PostgresServer

    server = PostgresServer()
    try:
        for prepare in (True, False):
            label = "prepared statements" if prepare else "planned every time"
            print(f"{label:<22}{run(args, wasm, manifest, server.new_database(), prepare)}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
