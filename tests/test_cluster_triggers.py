"""Triggers on every node of a cluster: host processes on one PostgreSQL run the queue pollers, async
workers and schedulers side by side; one is SIGKILLed mid-batch first. Nothing accepted is lost, no message is
acked twice, no schedule tick fires twice. Real guests, a real PostgreSQL, loopback, bounded time."""

from __future__ import annotations

import base64
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import COMPILED
from test_delivery import Runner, acked, in_flight
from test_triggers import deliveries, deploy_consumer, needs_guests, wait_for

from fnhost import Host
from fnhost.triggers import Triggers

pytestmark = [pytest.mark.slow, needs_guests]

KEY = bytes(range(32))
MESSAGES = 600
ASYNC = 20


def test_nodes_share_the_triggers_and_lose_nothing_when_one_is_killed(tmp_path: Path, postgres_server: Any) -> None:
    dsn = postgres_server.new_database()
    env = {**os.environ, "FNHOST_MASTER_KEY": base64.b64encode(KEY).decode()}
    host = Host(tmp_path / "operator", cache_dir=COMPILED, master_key=KEY, database=dsn)
    try:
        trigger = {"queue": "work", "batch_size": 10, "visibility_timeout_s": 2, "max_receive_count": 10}
        deploy_consumer(host, triggers={"queue": [trigger], "schedule": [{"name": "tick", "rate_s": 1}]},
                        limits={"timeout_ms": 1000})  # fmt: skip
        ack_logs = [tmp_path / f"acks{i}.log" for i in range(3)]
        published = [host.queues.publish("work", b"sleep:3") for _ in range(MESSAGES)]
        submitted = Triggers(host)  # not started: the operator only accepts async invokes
        accepted = [submitted.invoke_async("consumer", f'{{"key": "k{i}"}}'.encode()).id for i in range(ASYNC)]

        # Node 0 alone, killed mid-batch: what it had claimed comes back after the visibility timeout.
        first = Runner(tmp_path / "node0", ack_logs[0], dsn, env)
        wait_for(lambda: len(acked(ack_logs[0])) >= 50 and in_flight(host, "work"), what="node 0 mid-batch")
        first.kill()
        killed_in_flight = in_flight(host, "work")
        assert killed_in_flight
        # Nodes 1 and 2 side by side finish the work: queue batches, async invokes, schedule ticks.
        nodes = [Runner(tmp_path / f"node{i}", ack_logs[i], dsn, env) for i in (1, 2)]
        wait_for(lambda: host.queues.depth("work") == 0, timeout_s=90, what="the other nodes to drain the queue")
        wait_for(lambda: all(submitted.async_invocations.get(i).finished for i in accepted), timeout_s=60,
                 what="every accepted async invoke to finish")  # fmt: skip
        ticks_seen = wait_for(lambda: len(_ticks(host)) >= 3 and _ticks(host), timeout_s=20, what="schedule ticks")
        assert [n.terminate() for n in nodes] == [0, 0]

        per_node = [acked(log) for log in ack_logs]
        assert per_node[1] and per_node[2], "both surviving nodes consumed the queue"
        assert per_node[0] + per_node[1] + per_node[2] == Counter(published)  # each acked exactly once
        processed = deliveries(host)
        assert set(processed) == set(published)  # and processed at least once
        for message_id in killed_in_flight:  # node 0's last batch was received again
            keys = host.kv.list_keys("consumer", f"msg/{message_id}/")
            assert max(int(host.kv.get("consumer", k) or b"0") for k in keys) >= 2, message_id
        assert {submitted.async_invocations.get(i).status for i in accepted} == {"succeeded"}
        assert all(count == 1 for count in ticks_seen.values()), ticks_seen  # one node fired each tick
        assert host.queues.depth("work-dlq") == 0
    finally:
        host.close()


def _ticks(host: Host) -> Counter[str]:
    """Invocations per scheduled tick (`tick/<schedule>/<scheduled ms>/<invocation id>`)."""
    return Counter(k.split("/")[2] for k in host.kv.list_keys("consumer", "tick/", limit=10_000))
