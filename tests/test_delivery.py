"""At-least-once delivery across a SIGKILL: a real host process is killed in the middle of a batch,
restarted on the same data dir, and every message is still processed at least once and acked
exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import COMPILED
from test_triggers import deliveries, deploy_consumer, needs_guests, wait_for

from fnhost import Host

RUNNER = Path(__file__).resolve().parent / "trigger_runner.py"
N = 60


class Runner:
    def __init__(self, data_dir: Path, ack_log: Path, database: str | None = None, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(data_dir), str(COMPILED), str(ack_log), *([database] if database else [])],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def in_flight(host: Host, queue: str) -> list[str]:
    """Messages claimed by a consumer and not acked (hidden until their visibility timeout)."""
    rows = host.open_store(lambda db: db.db).execute(
        "SELECT id FROM queue_messages WHERE queue = ? AND visible_at > ?", [queue, time.time()]
    ).fetchall()
    return [r[0] for r in rows]


def acked(ack_log: Path) -> Counter[str]:
    lines = ack_log.read_text().splitlines() if ack_log.exists() else []
    return Counter(line.split()[1] for line in lines)


@needs_guests
@pytest.mark.slow
def test_no_message_lost_when_the_host_is_sigkilled_mid_batch(host: Host, tmp_path: Path) -> None:
    trigger = {"queue": "work", "batch_size": 5, "visibility_timeout_s": 2, "max_receive_count": 10}
    deploy_consumer(host, triggers={"queue": [trigger]}, limits={"timeout_ms": 1000})
    published = [host.queues.publish("work", b"sleep:20") for _ in range(N)]
    ack_log = tmp_path / "acks.log"

    killed_in_flight: list[str] = []
    for _attempt in range(5):  # kill while a batch is running (retry in the rare case we hit a gap)
        runner = Runner(host.data_dir, ack_log)
        wait_for(lambda: len(acked(ack_log)) >= 10 and in_flight(host, "work"), what="a batch in progress")
        runner.kill()
        killed_in_flight = in_flight(host, "work")
        if killed_in_flight:
            break
    assert killed_in_flight, "could not kill the host while a batch was in flight"
    assert host.queues.depth("work") > 0  # work was left over: the restart has something to do

    runner = Runner(host.data_dir, ack_log)
    try:
        wait_for(lambda: host.queues.depth("work") == 0, timeout_s=30, what="the queue to drain after the restart")
    finally:
        assert runner.terminate() == 0  # SIGTERM: the triggers stop cleanly

    assert acked(ack_log) == Counter(published)  # every message acked, none twice
    processed = deliveries(host)
    assert set(processed) == set(published)  # every message processed at least once
    for message_id in killed_in_flight:  # the batch the kill interrupted was delivered again
        receive_counts = [
            int(host.kv.get("consumer", key) or b"0") for key in host.kv.list_keys("consumer", f"msg/{message_id}/")
        ]
        assert max(receive_counts) >= 2, (message_id, receive_counts)
    assert host.queues.depth("work-dlq") == 0
    assert os.path.getsize(ack_log) > 0
