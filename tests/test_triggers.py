"""Event-driven invocation: the event ABI, cron, manifest triggers, queue triggers, async invokes,
schedules. Real hosts and the `consumer` guest; short visibility timeouts and backoffs keep it fast."""

from __future__ import annotations

import itertools
import json
import random
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import COMPILED, needs_componentize_py, wait_for

from fnhost import Host, Manifest, ManifestError, NotFound
from fnhost.build import build_guest
from fnhost.runtime import abi
from fnhost.triggers import Triggers, backoff_s
from fnhost.triggers.cron import CronError, CronExpression

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "python"
needs_guests = needs_componentize_py


def deploy_consumer(host: Host, name: str = "consumer", **overrides: Any) -> None:
    built = build_guest(GUESTS / "consumer")
    manifest = {**built.manifest.to_dict(), "name": name, **overrides}
    host.deploy(name, built.wasm_path.read_bytes(), manifest)


def deliveries(host: Host, prefix: str = "msg/") -> Counter[str]:
    """Deliveries per message id recorded by the consumer guest (`msg/<id>/<invocation>`)."""
    keys = host.kv.list_keys("consumer", prefix, limit=10_000)
    return Counter(k.split("/")[1] for k in keys)


@pytest.fixture
def acks() -> list[tuple[str, list[str]]]:
    return []


@pytest.fixture
def triggers(host: Host, acks: list[tuple[str, list[str]]]) -> Iterator[Triggers]:
    t = Triggers(
        host,
        retry_base_s=0.2,
        retry_max_s=1.0,
        refresh_interval_s=0.1,
        queue_idle_max_s=0.05,
        lease_margin_s=0.5,
        on_ack=lambda queue, ids: acks.append((queue, ids)),
    )
    yield t
    assert t.stop(timeout_s=10), "a trigger worker did not stop within 10 s"


# the event ABI -------------------------------------------------------------------------------------
def test_core_abi_encodes_queue_batches_and_schedule_ticks() -> None:
    ctx = abi.Context("inv", "fn", "1", 7, 128)
    head = abi.encode_invoke_input(ctx, b"")[:-5]  # context only: minus kind byte and empty payload
    batch = abi.QueueBatch((abi.BatchMessage("m1", "q", b"xy", 3),))
    assert abi.encode_event_input(ctx, batch) == head + bytes([1]) + struct.pack(
        "<II2sI1sI2sI", 1, 2, b"m1", 1, b"q", 2, b"xy", 3
    )
    tick = abi.ScheduleTick("every", 1_700_000_000_000)
    assert abi.encode_event_input(ctx, tick) == head + bytes([2]) + struct.pack("<I5sQ", 5, b"every", 1_700_000_000_000)
    assert abi.encode_event_input(ctx, b"p") == head + bytes([0]) + struct.pack("<I1s", 1, b"p")


@needs_guests
def test_component_receives_batch_and_tick(host: Host) -> None:
    deploy_consumer(host)
    batch = abi.QueueBatch((abi.BatchMessage("m1", "q", b"ok", 1), abi.BatchMessage("m2", "q", b"poison", 4)))
    r = host.invoke_event("consumer", batch, trigger="queue")
    assert (r.outcome.value, r.failed_message_ids, json.loads(r.output)) == ("ok", ["m2"], {"processed": 1})
    assert r.trigger == "queue" and host.kv.list_keys("consumer", "msg/") == [f"msg/m1/{r.invocation_id}"]
    r = host.invoke_event("consumer", abi.ScheduleTick("s", 42), trigger="schedule")
    assert r.ok and host.kv.list_keys("consumer", "tick/") == [f"tick/s/42/{r.invocation_id}"]
    assert host.invocations.get(r.invocation_id).trigger == "schedule"  # type: ignore[union-attr]


# cron ----------------------------------------------------------------------------------------------
def _next(expr: str, after: str, tz: str = "UTC") -> str:
    zone = ZoneInfo(tz)
    start = datetime.fromisoformat(after).replace(tzinfo=zone)
    return CronExpression.parse(expr).next_after(start, zone).astimezone(zone).isoformat()


@pytest.mark.parametrize(
    ("expr", "after", "tz", "expected"),
    [
        ("*/5 * * * *", "2024-05-01T12:03:10", "UTC", "2024-05-01T12:05:00+00:00"),
        ("*/5 * * * *", "2024-05-01T12:05:00", "UTC", "2024-05-01T12:10:00+00:00"),  # strictly after
        ("0 9 * * mon-fri", "2024-05-03T09:00:00", "Europe/Paris", "2024-05-06T09:00:00+02:00"),  # Fri -> Mon
        ("0 0 1,15 * *", "2024-02-01T00:00:00", "UTC", "2024-02-15T00:00:00+00:00"),
        ("0 0 13 * fri", "2024-05-01T00:00:00", "UTC", "2024-05-03T00:00:00+00:00"),  # dom OR dow (Vixie)
        ("0 0 29 feb *", "2024-03-01T00:00:00", "UTC", "2028-02-29T00:00:00+00:00"),
        ("@hourly", "2024-05-01T12:00:00", "UTC", "2024-05-01T13:00:00+00:00"),
        ("0 12 * * 7", "2024-05-01T00:00:00", "UTC", "2024-05-05T12:00:00+00:00"),  # 7 is Sunday
        # spring forward: 02:30 does not exist in Paris on 31 March 2024 -> that day is skipped
        ("30 2 * * *", "2024-03-30T03:00:00", "Europe/Paris", "2024-04-01T02:30:00+02:00"),
    ],
)
def test_cron_next_tick(expr: str, after: str, tz: str, expected: str) -> None:
    assert _next(expr, after, tz) == expected


def test_cron_fall_back_fires_a_repeated_local_time_once() -> None:
    zone = ZoneInfo("Europe/Paris")
    expr = CronExpression.parse("30 2 * * *")
    first = expr.next_after(datetime(2024, 10, 26, 23, 0, tzinfo=UTC), zone)  # 01:00 local, 27 October
    assert first == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first of the two 02:30s
    assert expr.next_after(first, zone) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)  # next day, CET


@pytest.mark.parametrize(
    ("expr", "message"),
    [("* * *", "expected 5"), ("60 * * * *", "minute field: 60"), ("*/0 * * * *", "step"),
     ("5-1 * * * *", "backwards"), ("* * * foo *", "not a number or a name")],
)  # fmt: skip
def test_cron_errors_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronExpression.parse(expr)


# the manifest --------------------------------------------------------------------------------------
def test_manifest_triggers_round_trip_and_defaults() -> None:
    m = Manifest.from_toml(
        'name = "f"\n[async]\nretries = 3\ndead_letter_queue = "f-dead"\n'
        '[[triggers.queue]]\nqueue = "orders"\nbatch_size = 5\n'
        '[[triggers.queue]]\nqueue = "other"\ndead_letter_queue = "elsewhere"\n'
        '[[triggers.schedule]]\nname = "nightly"\ncron = "0 3 * * *"\ntimezone = "Europe/Paris"\n'
        '[[triggers.schedule]]\nname = "minutely"\nrate_s = 60\n'
    )
    assert (m.async_config.retries, m.async_config.dead_letter_queue) == (3, "f-dead")
    orders, other = m.queue_triggers
    assert (orders.batch_size, orders.visibility_timeout_s, orders.max_receive_count) == (5, 30, 5)
    assert (orders.dead_letter_queue, other.dead_letter_queue) == ("f-dead", "elsewhere")
    assert [s.name for s in m.schedules] == ["nightly", "minutely"]
    assert Manifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    plain = Manifest.from_toml('name = "g"\n[[triggers.queue]]\nqueue = "in"')
    assert plain.queue_triggers[0].dead_letter_queue == "in-dlq" and plain.async_config.dead_letter_queue is None


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[triggers.queue]]\nqueue = "q"\nvisibility_timeout_s = 2', r"triggers.queue\[0\].visibility_timeout_s: 2 s"),
        ('[[triggers.queue]]\nqueue = "q"\nbatch_size = 0', r"triggers.queue\[0\].batch_size: must be 1..1000"),
        ('[[triggers.queue]]\nqueue = "q"\ndead_letter_queue = "q"', "must differ"),
        ('[[triggers.queue]]\nqueue = "q"\npollers = 0', r"triggers.queue\[0\].pollers: must be 1..64"),
        (
            '[limits]\nmax_concurrency = 2\n[[triggers.queue]]\nqueue = "q"\npollers = 3',
            r"pollers: 3 .*max_concurrency \(2\)",
        ),
        ('[[triggers.queue]]\nqueue = "q"\n[[triggers.queue]]\nqueue = "q"', r"triggers.queue\[1\].queue"),
        ('[[triggers.schedule]]\nname = "s"', r"triggers.schedule\[0\]: set exactly one of cron"),
        ('[[triggers.schedule]]\nname = "s"\ncron = "* * *"', r"triggers.schedule\[0\].cron: .*5"),
        ('[[triggers.schedule]]\nname = "s"\nrate_s = 1\ntimezone = "Mars/Base"', r"\.timezone: unknown time zone"),
        ("[async]\nretries = 11", "async.retries: must be 0..10"),
        ("[async]\nbackoff = 1", "async.backoff: unknown field"),
        ("[triggers]\nhttp = []", "triggers.http: unknown field"),
    ],
)
def test_manifest_trigger_errors_name_the_field(toml: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_toml('name = "f"\n' + toml)


# queue triggers ------------------------------------------------------------------------------------
QUICK = {"limits": {"timeout_ms": 1000}}  # lets visibility timeouts of 1-2 s pass validation


@needs_guests
def test_queue_trigger_delivers_in_batches_and_acks_each_message_once(
    host: Host, triggers: Triggers, acks: list[tuple[str, list[str]]]
) -> None:
    deploy_consumer(host, triggers={"queue": [{"queue": "work", "batch_size": 10}]}, **QUICK)
    ids = [host.queues.publish("work", f"m{i}".encode()) for i in range(25)]
    triggers.start()
    wait_for(lambda: sum(len(a[1]) for a in acks) == 25, what="25 acks")
    assert host.queues.depth("work") == 0
    assert Counter(i for _, batch in acks for i in batch) == Counter(ids)  # every message acked exactly once
    assert deliveries(host) == Counter(ids)  # and delivered exactly once (nothing failed)
    assert all(len(batch) <= 10 for _, batch in acks)
    records = host.invocations.list("consumer", limit=100)
    assert len(records) >= 3 and {r.trigger for r in records} == {"queue"}
    [mapping] = triggers.queue_mappings()
    assert (mapping.id, mapping.source, mapping.trigger.batch_size) == ("consumer:work", "manifest", 10)


def test_on_sqlite_a_poller_acks_on_its_own_thread(host: Host) -> None:
    """A background ack took turns with the poller's next receive for SQLite's one writer lock (the loser
    sleeps in the busy handler): inline it is 1.7x the rate (docs/performance.md). PostgreSQL keeps the
    ack thread (tests/test_stores.py checks both stores' answer)."""
    deploy_consumer(host, triggers={"queue": [{"queue": "work", "batch_size": 5}]}, **QUICK)
    threads: list[str] = []
    t = Triggers(host, queue_idle_max_s=0.05, on_ack=lambda queue, ids: threads.append(threading.current_thread().name))
    for i in range(10):
        host.queues.publish("work", f"m{i}".encode())
    t.start()
    try:
        wait_for(lambda: len(threads) >= 2, what="two acks")
    finally:
        assert t.stop(timeout_s=10)
    assert set(threads) == {"fnhost-queue-consumer:work"}, threads


@needs_guests
def test_several_pollers_run_batches_at_once_and_ack_each_message_once(
    host: Host, triggers: Triggers, acks: list[tuple[str, list[str]]]
) -> None:
    trigger = {"queue": "work", "batch_size": 2, "pollers": 3}
    deploy_consumer(host, triggers={"queue": [trigger]}, **QUICK)
    ids = [host.queues.publish("work", b"sleep:150") for _ in range(12)]
    triggers.start()
    wait_for(lambda: sum(len(a[1]) for a in acks) == 12, what="12 acks")
    assert Counter(i for _, batch in acks for i in batch) == Counter(ids)  # every message acked exactly once
    assert deliveries(host) == Counter(ids)  # and delivered exactly once
    records = wait_for(lambda: len(r := host.invocations.list("consumer")) == 6 and r, what="6 invocation records")
    spans = sorted((r.started_at, r.started_at + r.duration_ms / 1000) for r in records)
    overlapping = max(sum(start <= s < end for s, _ in spans) for start, end in spans)
    assert overlapping >= 2, spans  # batches of different pollers ran at the same time


@needs_guests
def test_batching_window_collects_messages_published_apart(
    host: Host, triggers: Triggers, acks: list[tuple[str, list[str]]]
) -> None:
    deploy_consumer(
        host, triggers={"queue": [{"queue": "w", "batch_size": 10, "max_batching_window_ms": 600}]}, **QUICK
    )
    triggers.start()
    first = host.queues.publish("w", b"a")
    wait_for(lambda: host.queues.queue_stats() and host.queues.queue_stats()[0].in_flight == 1, what="claim")
    second = host.queues.publish("w", b"b")  # inside the window of the first message's batch
    wait_for(lambda: acks, what="an ack")
    assert acks == [("w", [first, second])]


@needs_guests
def test_partial_batch_failure_redelivers_only_failed_messages_then_dead_letters_them(
    host: Host, triggers: Triggers, acks: list[tuple[str, list[str]]]
) -> None:
    trigger = {"queue": "in", "batch_size": 10, "visibility_timeout_s": 1, "max_receive_count": 2}
    deploy_consumer(host, triggers={"queue": [trigger]}, **QUICK)
    good = [host.queues.publish("in", b"fine") for _ in range(3)]
    poison = host.queues.publish("in", b"poison pill")
    triggers.start()
    wait_for(lambda: host.queues.depth("in") == 0, what="the source queue to drain")
    assert deliveries(host) == Counter(good)  # the good ones once; the poison never succeeded
    assert sorted(i for _, batch in acks for i in batch) == sorted([*good, poison])  # the DLQ move acks it
    [dead] = host.queues.peek("in-dlq")
    assert dead.body == b"poison pill"  # body unchanged: a redrive is a publish of it
    records = host.invocations.list("consumer")
    assert len(records) == 2  # first batch (3 ok + poison), then the poison alone after 1 s
    assert records[0].started_at - records[1].started_at >= 0.9  # redelivered after the visibility timeout
    assert triggers.metrics()["counters"]["dead_lettered"] == {"queue:in": 1}


@needs_guests
def test_failed_batch_is_redelivered_after_visibility_timeout_then_dead_lettered(
    host: Host, triggers: Triggers
) -> None:
    trigger = {"queue": "in", "batch_size": 10, "visibility_timeout_s": 1, "max_receive_count": 3}
    deploy_consumer(host, triggers={"queue": [trigger]}, **QUICK)
    ids = [host.queues.publish("in", b"fine"), host.queues.publish("in", b"crash")]
    triggers.start()
    wait_for(lambda: host.queues.depth("in") == 0, what="both messages to leave the queue")
    records = list(reversed(host.invocations.list("consumer")))
    assert [r.outcome for r in records] == ["guest_error"] * 3
    gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(records)]
    assert all(0.9 <= g < 3 for g in gaps), gaps  # invisible for the visibility timeout, then redelivered
    assert sorted(m.body for m in host.queues.peek("in-dlq")) == [b"crash", b"fine"]  # whole batch failed
    # the good message's side effects happened on every attempt: a failed batch is redelivered whole
    assert deliveries(host) == Counter({ids[0]: 3})


@needs_guests
def test_message_received_past_max_receives_after_a_crash_goes_to_dlq_unprocessed(
    host: Host, triggers: Triggers
) -> None:
    deploy_consumer(host, triggers={"queue": [{"queue": "in", "max_receive_count": 1, "visibility_timeout_s": 1}]},
                    **QUICK)  # fmt: skip
    mid = host.queues.publish("in", b"fine")
    host.queues.receive("in", 1, visibility_timeout_s=0)  # a consumer that died after receiving it
    triggers.start()
    wait_for(lambda: host.queues.depth("in") == 0, what="the move to the DLQ")
    assert [m.body for m in host.queues.peek("in-dlq")] == [b"fine"] and mid not in deliveries(host)


@needs_guests
def test_api_mapping_follows_create_and_delete(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, **QUICK)
    triggers.start()
    with pytest.raises(ManifestError, match=r"mapping\.visibility_timeout_s"):
        triggers.queue_triggers.create("consumer", "api-q", visibility_timeout_s=0)
    with pytest.raises(NotFound):
        triggers.queue_triggers.create("nobody", "api-q")
    mapping = triggers.queue_triggers.create("consumer", "api-q", batch_size=2, visibility_timeout_s=5)
    assert mapping.source == "api" and [m.id for m in triggers.queue_mappings()] == ["consumer:api-q"]
    first = host.queues.publish("api-q", b"one")
    wait_for(lambda: first in deliveries(host), what="delivery through the API mapping")
    triggers.queue_triggers.delete("consumer", "api-q")
    assert triggers.queue_mappings() == []
    host.queues.publish("api-q", b"two")
    time.sleep(0.3)  # several poll intervals: a stopped mapping must not deliver
    assert host.queues.depth("api-q") == 1 and len(deliveries(host)) == 1


def test_queue_metrics_report_depth_and_oldest_age(host: Host) -> None:
    triggers = Triggers(host)
    host.queues.publish("backlog", b"1")
    host.queues.publish("backlog", b"2")
    host.queues.receive("backlog", 1)
    wait_for(lambda: time.time() - host.queues.peek("backlog", 1)[0].enqueued_at > 0.05, what="age")
    [q] = triggers.queue_metrics()
    assert (q.queue, q.depth, q.in_flight) == ("backlog", 2, 1) and q.oldest_age_s > 0.05


# async invokes -------------------------------------------------------------------------------------
def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 60.0)]:
        delays = [backoff_s(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(full / 2 <= d < full for d in delays) and max(delays) - min(delays) > full / 4


@needs_guests
def test_async_invoke_is_durable_then_succeeds(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host)
    accepted = triggers.invoke_async("consumer", b'{"key": "a"}')
    assert (accepted.status, accepted.attempts) == ("queued", 0)  # stored before any worker ran
    triggers.start()
    done = wait_for(lambda: (a := triggers.async_invocations.get(accepted.id)).finished and a, what="success")
    assert (done.status, done.attempts, json.loads(done.output or b"")) == ("succeeded", 1, {"key": "a", "attempts": 1})
    record = host.invocations.get(done.invocation_id or "")
    assert record is not None and (record.trigger, record.outcome) == ("async", "ok")
    with pytest.raises(NotFound):
        triggers.invoke_async("nobody", b"")


@needs_guests
def test_async_retries_follow_the_backoff_then_succeed(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, **{"async": {"retries": 2}})
    accepted = triggers.invoke_async("consumer", b'{"key": "r", "fail_times": 2}')
    triggers.start()
    done = wait_for(lambda: (a := triggers.async_invocations.get(accepted.id)).finished and a, what="success")
    assert (done.status, done.attempts) == ("succeeded", 3)
    times = sorted(int(host.kv.get("consumer", k) or b"0") for k in host.kv.list_keys("consumer", "try/r/"))
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
    # base 0.2 s: the 1st retry waits 0.1..0.2 s, the 2nd 0.2..0.4 s (plus a poll interval of slack)
    assert 0.1 <= gaps[0] < 0.2 + 0.3 and 0.2 <= gaps[1] < 0.4 + 0.3, gaps
    assert triggers.metrics()["counters"]["async_retries"] == {"consumer": 2}


@needs_guests
def test_async_retries_spent_go_to_the_dead_letter_queue(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, **{"async": {"retries": 1, "dead_letter_queue": "async-dead"}})
    accepted = triggers.invoke_async("consumer", b'{"key": "d", "fail_times": 9}')
    triggers.start()
    done = wait_for(lambda: (a := triggers.async_invocations.get(accepted.id)).finished and a, what="failure")
    assert (done.status, done.attempts, done.outcome) == ("failed", 2, "guest_error")
    [message] = host.queues.peek("async-dead")
    envelope = json.loads(message.body)
    assert envelope["async_invocation_id"] == accepted.id and envelope["attempts"] == 2
    assert "fails on purpose" in envelope["error"] and done.dead_letter_message_id == message.id
    assert json.loads(__import__("base64").b64decode(envelope["payload_base64"])) == {"key": "d", "fail_times": 9}


@needs_guests
def test_async_idempotency_key_returns_the_same_invocation(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host)
    a = triggers.invoke_async("consumer", b'{"key": "i"}', idempotency_key="order-1")
    b = triggers.invoke_async("consumer", b'{"key": "other"}', idempotency_key="order-1")
    c = triggers.invoke_async("consumer", b'{"key": "i2"}', idempotency_key="order-2")
    assert a.id == b.id != c.id
    expired = Triggers(host, idempotency_window_s=0.0)  # outside the window the key is free again
    wait_for(lambda: time.time() > a.created_at, what="a clock tick")
    assert expired.invoke_async("consumer", b'{"key": "i"}', idempotency_key="order-1").id != a.id


@needs_guests
def test_async_event_of_a_dead_worker_is_claimed_again_after_its_lease(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, **QUICK)  # lease = 1 s timeout + 0.5 s margin
    accepted = triggers.invoke_async("consumer", b'{"key": "lease"}')
    claimed = triggers.async_invocations._claim()  # a worker claims it and dies
    assert claimed is not None and triggers.async_invocations.get(accepted.id).status == "running"
    triggers.start()
    done = wait_for(lambda: (a := triggers.async_invocations.get(accepted.id)).finished and a, what="recovery")
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert time.time() - done.created_at >= 1.4  # not before the lease ended


# schedules -----------------------------------------------------------------------------------------
def ticks(host: Host, name: str) -> dict[int, list[int]]:
    """Scheduled ms -> the times (ms) each invocation for it ran."""
    out: dict[int, list[int]] = {}
    for key in host.kv.list_keys("consumer", f"tick/{name}/"):
        out.setdefault(int(key.split("/")[2]), []).append(int(host.kv.get("consumer", key) or b"0"))
    return out


TOLERANCE_MS = 1000  # the documented bound on lateness (docs/events.md); typically < 50 ms


@needs_guests
def test_rate_schedule_fires_every_tick_on_time(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, triggers={"schedule": [{"name": "every", "rate_s": 1}]})
    triggers.start()
    fired = wait_for(lambda: len(t := ticks(host, "every")) >= 3 and t, what="3 ticks")
    scheduled = sorted(fired)
    assert all(b - a == 1000 for a, b in itertools.pairwise(scheduled))  # none skipped
    assert all(len(fired[s]) == 1 and 0 <= fired[s][0] - s < TOLERANCE_MS for s in scheduled), fired
    [status] = triggers.schedules()
    assert (status.name, status.rate_s, status.fired >= 3, status.next_due_ms > scheduled[-1]) == (
        "every", 1, True, True
    )  # fmt: skip


@needs_guests
def test_two_hosts_on_one_data_dir_never_fire_the_same_tick_twice(host: Host, tmp_path: Path) -> None:
    deploy_consumer(host, triggers={"schedule": [{"name": "shared", "rate_s": 1}]})
    other = Host(tmp_path / "data", cache_dir=COMPILED)
    first = Triggers(host, refresh_interval_s=0.1).start()
    second = Triggers(other, refresh_interval_s=0.1).start()
    try:
        fired = wait_for(lambda: len(t := ticks(host, "shared")) >= 4 and t, what="4 ticks")
    finally:
        assert first.stop() and second.stop()
        other.close()
    assert all(len(runs) == 1 for runs in ticks(host, "shared").values()), fired
    fired_by = (
        first.counters.get("schedule_fired", "consumer/shared"),
        second.counters.get("schedule_fired", "consumer/shared"),
    )
    assert sum(fired_by) == len(ticks(host, "shared"))


@needs_guests
def test_missed_ticks_are_not_replayed_in_a_burst(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, triggers={"schedule": [{"name": "m", "rate_s": 1}]})
    [schedule] = triggers.scheduler.current()
    triggers.scheduler.step()  # first sight: the row is created with the next tick
    now_ms = int(time.time() * 1000)
    with host.open_store(lambda db: db.transaction()) as db:  # as if the host had been down for 30 s
        db.execute("UPDATE schedule_state SET next_due_ms = ?", [schedule.next_tick_ms(now_ms - 31_000)])
    triggers.scheduler.start()
    triggers.scheduler.step()
    assert triggers.scheduler.stop(timeout_s=10)
    fired = ticks(host, "m")
    assert len(fired) == 1 and now_ms - 1000 <= next(iter(fired)) <= now_ms + 1000  # only the latest missed tick
    assert triggers.counters.get("schedule_skipped", "consumer/m") >= 29


@needs_guests
def test_cron_schedule_waits_for_its_first_tick(host: Host, triggers: Triggers) -> None:
    deploy_consumer(host, triggers={"schedule": [{"name": "yearly", "cron": "@yearly", "timezone": "Asia/Tokyo"}]})
    triggers.scheduler.step()
    [status] = triggers.schedules()
    due = datetime.fromtimestamp((status.next_due_ms or 0) / 1000, ZoneInfo("Asia/Tokyo"))
    assert (due.month, due.day, due.hour, due.minute) == (1, 1, 0, 0) and status.fired == 0
    assert ticks(host, "yearly") == {}


def test_stop_is_bounded_and_idempotent(host: Host) -> None:
    t = Triggers(host).start()
    started = time.monotonic()
    assert t.stop(timeout_s=5) and t.stop()
    assert time.monotonic() - started < 2


# the HTTP API ----------------------------------------------------------------------------------------
@needs_guests
def test_api_async_invoke_queues_triggers_schedules_and_metrics(host: Host, triggers: Triggers) -> None:
    import warnings

    from fnhost.api import create_app
    from fnhost.control import ApiKeys

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    deploy_consumer(
        host,
        triggers={"queue": [{"queue": "in", "batch_size": 5}], "schedule": [{"name": "hourly", "cron": "@hourly"}]},
        **{"async": {"retries": 0}},
    )
    admin_file = host.open_store(ApiKeys).ensure_bootstrap_admin(host.data_dir)
    assert admin_file is not None
    auth = {"Authorization": f"Bearer {admin_file.read_text().strip()}"}
    client = TestClient(create_app(host, triggers=triggers), raise_server_exceptions=False)

    event = {**auth, "X-Fnhost-Invocation-Type": "Event", "X-Fnhost-Idempotency-Key": "k1"}
    r = client.post("/v1/functions/consumer/invoke", content=b'{"key": "api"}', headers=event)
    assert r.status_code == 202 and r.json()["status"] == "queued" and r.headers["location"] == r.json()["location"]
    again = client.post("/v1/functions/consumer/invoke", content=b'{"key": "api"}', headers=event)
    assert again.status_code == 202 and again.json()["id"] == r.json()["id"]  # idempotent
    status = client.get(r.json()["location"], headers=auth).json()
    assert (status["async"], status["status"], status["attempts"]) == (True, "queued", 0)
    bad = client.post("/v1/functions/consumer/invoke", headers={**auth, "X-Fnhost-Invocation-Type": "Later"})
    assert bad.status_code == 400 and "RequestResponse" in bad.json()["error"]["message"]
    assert client.post("/v1/functions/nobody/invoke", headers=event).status_code == 404

    sent = client.post("/v1/queues/backlog/messages", content=b"hello", headers=auth)
    assert sent.status_code == 201
    assert client.get("/v1/queues", headers=auth).json()["queues"][0]["queue"] == "backlog"
    [peeked] = client.get("/v1/queues/backlog/messages", headers=auth).json()["messages"]
    assert (peeked["id"], peeked["body"]) == (sent.json()["id"], "hello")
    assert client.delete("/v1/queues/backlog/messages", headers=auth).json()["deleted"] == 1
    assert client.post("/v1/queues/bad name/messages", content=b"x", headers=auth).status_code == 400
    assert client.get("/v1/queues").status_code == 401

    [mapping] = client.get("/v1/triggers", headers=auth).json()["queue"]
    assert (mapping["id"], mapping["batch_size"], mapping["dead_letter_queue"]) == ("consumer:in", 5, "in-dlq")
    [schedule] = client.get("/v1/schedules", headers=auth).json()["schedules"]
    assert (schedule["name"], schedule["cron"]) == ("hourly", "@hourly")

    triggers.start()
    wait_for(lambda: client.get(r.json()["location"], headers=auth).json()["status"] == "succeeded", what="run")
    metrics = client.get("/metrics", headers=auth).text
    assert 'fnhost_async_succeeded_total{function="consumer"} 1.0' in metrics
    assert "fnhost_queue_oldest_message_age_seconds" in metrics
