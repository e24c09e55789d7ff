"""Messages per second through a queue trigger, for several batch sizes, in one run.

    python bench/queue.py [--messages N] [--batch-sizes 1,10,100]

For each batch size: a fresh data dir, the Python `hello` component deployed with a
`[[triggers.queue]]` mapping (its event handler returns at once and acks the whole batch), N
messages published up front, then `Triggers` started; the clock runs from start until the queue is
empty. One poller per mapping, so this is the rate of one consumer: receive (one claim
transaction), one invocation per batch (fresh instance), one ack transaction per batch.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the stdlib's `queue`: drop its own directory from the path, or
# `concurrent.futures` would import it instead.
sys.path[:] = [str(ROOT / "host"), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.triggers import Triggers  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


def run(
    batch_size: int, messages: int, wasm: bytes, manifest: dict[str, object], *, database: str | None = None,
    master_key: bytes | None = None,
) -> tuple[float, int]:
    """(msg/s, invocations) through one queue trigger; on SQLite in a temp dir, or on `database`."""
    with tempfile.TemporaryDirectory() as tmp, Host(
        Path(tmp) / "data", cache_dir=CACHE / "compiled", database=database, master_key=master_key
    ) as host:
        trigger = {"queue": "bench", "batch_size": batch_size, "visibility_timeout_s": 60}
        host.deploy("hello", wasm, {**manifest, "triggers": {"queue": [trigger]}})
        for i in range(messages):
            host.queues.publish("bench", f"message {i}".encode())
        triggers = Triggers(host, queue_idle_max_s=0.01)
        started = time.perf_counter()
        triggers.start()
        deadline = time.monotonic() + 600
        while host.queues.depth("bench") and time.monotonic() < deadline:
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        triggers.stop()
        invocations = len(host.invocations.list("hello", limit=1000))
        if host.queues.depth("bench"):
            raise SystemExit(f"batch size {batch_size}: the queue did not drain within 600 s")
        return messages / elapsed, invocations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="1,10,100")
    args = parser.parse_args()
    built = build_guest(ROOT / "guests" / "python" / "hello")
    wasm, manifest = built.wasm_path.read_bytes(), built.manifest.to_dict()
    print(f"queue trigger -> python hello component, {args.messages} messages, one poller")
    print(f"{'batch size':>10}  {'messages/s':>10}  {'invocations':>11}  {'per message':>11}")
    for size in (int(s) for s in args.batch_sizes.split(",")):
        rate, invocations = run(size, args.messages, wasm, manifest)
        shown = f"{invocations}" if invocations < 1000 else ">=1000"
        print(f"{size:>10}  {rate:>10,.0f}  {shown:>11}  {1e6 / rate:>8,.0f} us")


if __name__ == "__main__":
    main()
