"""A host process for tests/test_delivery.py: a Host plus its Triggers on a data dir, until killed.

    python tests/trigger_runner.py DATA_DIR CACHE_DIR ACK_LOG [DATABASE_URL]

With DATABASE_URL it is one node of a cluster on that PostgreSQL (FNHOST_MASTER_KEY from the environment).

Every ack that commits is appended to ACK_LOG as one line per message id (`queue id`), with one
O_APPEND write per batch, so the log survives a SIGKILL of this process. SIGTERM stops cleanly.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from fnhost import Host
from fnhost.triggers import Triggers


def main() -> None:
    data_dir, cache_dir, ack_log = sys.argv[1:4]
    database = sys.argv[4] if len(sys.argv) > 4 else None
    fd = os.open(ack_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_ack(queue: str, ids: list[str]) -> None:
        os.write(fd, "".join(f"{queue} {i}\n" for i in ids).encode())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host = Host(data_dir, cache_dir=cache_dir, database=database)
    triggers = Triggers(host, refresh_interval_s=0.1, queue_idle_max_s=0.05, on_ack=on_ack).start()
    print("ready", flush=True)
    stop.wait()
    clean = triggers.stop(timeout_s=10)
    host.close()
    os.close(fd)
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
