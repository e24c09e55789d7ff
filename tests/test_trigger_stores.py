"""The triggers' tables on both backends: async invokes (claims, leases, fencing, idempotency, dead letters
in one transaction), schedule state (one claim per tick across hosts), queue mappings, dead-letter moves and redrives."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_stores import reopen, run_threads

from fnhost.stores import SQLiteQueueStore, new_sortable_id
from fnhost.stores.async_invocations import FAILED, QUEUED, RUNNING, SUCCEEDED, AsyncInvocationStore
from fnhost.stores.schedules import ScheduleStateStore


def store(db: Any) -> AsyncInvocationStore:
    return AsyncInvocationStore(db, SQLiteQueueStore(db))


def submit(s: AsyncInvocationStore, key: str | None = None, lease_s: float = 30.0, dlq: str | None = None) -> Any:
    return s.submit(new_sortable_id(), "f", b"payload", qualifier=None, max_attempts=2, lease_s=lease_s,
                    dead_letter_queue=dlq, idempotency_key=key, idempotency_window_s=3600)  # fmt: skip


def test_competing_claimers_never_share_an_event(any_db: Any) -> None:
    publisher = store(any_db)
    ids = {submit(publisher).id for _ in range(120)}
    claimers = [store(any_db), store(reopen(any_db))]

    def drain(i: int) -> list[str]:
        got = []
        while (claimed := claimers[i % 2].claim()) is not None:
            got.append(claimed.id)
        return got

    per_thread = run_threads(4, drain)
    everything = [event_id for got in per_thread for event_id in got]
    assert len(everything) == len(set(everything)) == 120 and set(everything) == ids
    assert {e.status for e in publisher.list(limit=200)} == {RUNNING}


def test_a_lost_lease_is_claimed_again_and_the_stale_attempt_cannot_finish(any_db: Any) -> None:
    s = store(any_db)
    event = submit(s, lease_s=0.2)
    first = s.claim()
    assert first is not None and (first.id, first.attempt) == (event.id, 1)
    assert s.claim() is None  # leased
    time.sleep(0.3)
    second = s.claim()
    assert second is not None and (second.id, second.attempt) == (event.id, 2)
    assert s.finish(event.id, 1, SUCCEEDED, "ok", None, b"late", None) is None  # fenced out
    done = s.finish(event.id, 2, SUCCEEDED, "ok", None, b"out", "inv-2")
    assert done is not None and done.attempt == 2
    got = s.get(event.id)
    assert got is not None and (got.status, got.output, got.invocation_id) == (SUCCEEDED, b"out", "inv-2")
    assert got.next_attempt_at is None


def test_one_idempotency_key_is_one_event_even_when_submits_race(any_db: Any) -> None:
    stores = [store(any_db), store(reopen(any_db))]
    events = run_threads(6, lambda i: submit(stores[i % 2], key="order-17"))
    assert len({e.id for e in events}) == 1
    assert stores[0].pending() == 1


def test_retry_then_dead_letter_in_the_same_transaction(any_db: Any) -> None:
    s = store(any_db)
    queues = SQLiteQueueStore(any_db)
    event = submit(s, dlq="dead")
    first = s.claim()
    assert first is not None
    assert s.finish(event.id, 1, QUEUED, "trap", "boom", None, "inv-1", retry_in_s=0.0) is not None
    second = s.claim()
    assert second is not None and second.attempt == 2
    finished = s.finish(event.id, 2, FAILED, "trap", "boom", None, "inv-2",
                        dead_letter=lambda e: json.dumps({"id": e.id, "attempts": e.attempt}).encode())  # fmt: skip
    assert finished is not None and finished.dead_letter_message_id is not None
    [message] = queues.peek("dead")
    assert json.loads(message.body) == {"id": event.id, "attempts": 2}
    got = s.get(event.id)
    assert got is not None and (got.status, got.dead_letter_message_id) == (FAILED, message.id)


def test_a_dead_letter_that_cannot_be_published_leaves_the_event_running(any_db: Any) -> None:
    s = store(any_db)
    event = submit(s, dlq="dead")
    claimed = s.claim()
    assert claimed is not None

    def refuse(_: Any) -> bytes:
        raise RuntimeError("envelope failed")

    with pytest.raises(RuntimeError, match="envelope failed"):
        s.finish(event.id, 1, FAILED, "trap", "boom", None, None, dead_letter=refuse)
    got = s.get(event.id)
    assert got is not None and got.status == RUNNING  # rolled back whole: the lease will bring it back
    assert SQLiteQueueStore(any_db).peek("dead") == []


def test_prune_deletes_only_old_finished_events(any_db: Any) -> None:
    s = store(any_db)
    done, waiting = submit(s), submit(s)
    claimed = s.claim()
    assert claimed is not None and claimed.id == done.id
    s.finish(done.id, 1, SUCCEEDED, "ok", None, None, None)
    assert s.prune(retention_s=3600) == 0
    time.sleep(0.05)
    assert s.prune(retention_s=0.01) == 1
    assert s.get(done.id) is None and s.get(waiting.id) is not None


def test_one_tick_is_claimed_by_exactly_one_of_several_hosts(any_db: Any) -> None:
    stores = [ScheduleStateStore(any_db), ScheduleStateStore(reopen(any_db))]
    stores[0].restart("f/every-second", "rate:1", 1_000)
    stores[1].restart("f/every-second", "rate:1", 5_000)  # same spec: the first start stands
    state = stores[0].get("f/every-second")
    assert state is not None and state.next_due_ms == 1_000
    for due in range(1_000, 21_000, 1_000):  # 20 ticks, 6 hosts racing for each
        won = run_threads(6, lambda i, due=due: stores[i % 2].advance("f/every-second", "rate:1", due, due + 1_000,
                                                                       due, 0))  # fmt: skip
        assert won.count(True) == 1
    state = stores[1].get("f/every-second")
    assert state is not None and (state.next_due_ms, state.fired, state.last_due_ms) == (21_000, 20, 20_000)
    stores[0].record_run("f/every-second", 20_000, 123.5, "inv", "ok")
    stores[0].record_run("f/every-second", 19_000, 1.0, "stale", "ok")  # an older tick's late report
    state = stores[0].get("f/every-second")
    assert state is not None and (state.last_invocation_id, state.last_outcome) == ("inv", "ok")


def test_a_changed_schedule_restarts(any_db: Any) -> None:
    s = ScheduleStateStore(any_db)
    s.restart("f/s", "rate:1", 1_000)
    assert not s.advance("f/s", "rate:2", 1_000, 3_000, 1_000, 0)  # another host still on the old spec
    s.restart("f/s", "rate:2", 8_000)
    state = s.get("f/s")
    assert state is not None and (state.spec, state.next_due_ms) == ("rate:2", 8_000)


def test_dead_letter_move_is_one_transaction_and_skips_messages_another_consumer_acked(any_db: Any) -> None:
    queues = SQLiteQueueStore(any_db)
    ids = [queues.publish("src", f"m{i}".encode()) for i in range(3)]
    batch = queues.receive("src", max_messages=3)
    assert queues.ack_many("src", [batch[1]]) == [ids[1]]  # another consumer finished this one
    assert queues.move("src", batch, "src-dlq") == [ids[0], ids[2]]
    assert [m.body for m in queues.peek("src-dlq")] == [b"m0", b"m2"]
    assert queues.depth("src") == 0
    assert queues.move("src", batch, "src-dlq") == []  # a second mover finds nothing to move


def test_racing_mapping_creates_store_one(any_db: Any) -> None:
    from fnhost.stores.queue_mappings import QueueMappingStore

    stores = [QueueMappingStore(any_db), QueueMappingStore(reopen(any_db))]
    won = run_threads(6, lambda i: stores[i % 2].add("f", "jobs", {"queue": "jobs", "batch_size": 10}))
    assert won.count(True) == 1
    assert stores[1].list() == [("f", {"queue": "jobs", "batch_size": 10})]
    assert stores[0].remove("f", "jobs") and not stores[0].remove("f", "jobs")


def test_a_late_ack_cannot_delete_the_redelivery(any_db: Any) -> None:
    queues = SQLiteQueueStore(any_db)
    message_id = queues.publish("q", b"work")
    [first] = queues.receive("q", visibility_timeout_s=0.1)
    time.sleep(0.2)  # the first consumer is slow: its timeout passes and the message goes out again
    [second] = queues.receive("q", visibility_timeout_s=30)
    assert second.receive_count == 2
    assert queues.ack_many("q", [first]) == []  # the stale delivery's ack
    assert queues.depth("q") == 1
    assert queues.ack_many("q", [second]) == [message_id]
    assert queues.depth("q") == 0


def test_cluster_concurrency_slots_hold_across_hosts_and_leases_expire(any_db: Any) -> None:
    import threading

    from fnhost.stores.concurrency import ConcurrencyStore

    stores = [ConcurrencyStore(any_db), ConcurrencyStore(reopen(any_db))]
    lock = threading.Lock()
    running, most = [0], [0]

    def worker(i: int) -> int:
        got = 0
        for _ in range(15):
            slot = stores[i % 2].acquire("f", 2, lease_s=30)
            if slot is None:
                time.sleep(0.002)
                continue
            got += 1
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.005)
            with lock:
                running[0] -= 1
            stores[i % 2].release("f", slot)
        return got

    assert sum(run_threads(6, worker)) > 0
    assert most[0] <= 2  # never more than the limit at once, over two hosts
    assert stores[0].in_use("f") == 0
    held = [stores[0].acquire("f", 2, lease_s=0.1), stores[1].acquire("f", 2, lease_s=0.1)]
    assert all(held) and stores[0].acquire("f", 2, lease_s=30) is None  # full
    time.sleep(0.2)  # a node died holding both: their leases run out
    late = stores[1].acquire("f", 2, lease_s=30)
    assert late is not None
    stores[0].release("f", held[0])  # type: ignore[arg-type]  # the dead holder's stale receipt changes nothing
    assert stores[0].in_use("f") == 1
    assert stores[0].acquire("g", 1, lease_s=30) is not None and stores[0].acquire("g", 3, lease_s=30) is not None


def test_the_largest_cluster_limit_creates_its_slots_in_one_batch(any_db: Any) -> None:
    from fnhost.manifest import LIMIT_RANGES
    from fnhost.stores.concurrency import ConcurrencyStore

    largest = LIMIT_RANGES["cluster_max_concurrency"][1]
    store = ConcurrencyStore(any_db)
    round_trips = getattr(any_db, "round_trips", None)
    slots = [store.acquire("wide", largest, lease_s=30) for _ in range(3)]
    assert all(slots) and store.in_use("wide") == 3
    count = any_db.db.execute("SELECT count(*) FROM concurrency_slots WHERE function = 'wide'").fetchone()[0]
    assert int(count) == largest
    if round_trips is not None:  # PostgreSQL: a few statements, not one per slot
        assert any_db.round_trips - round_trips < 50


def test_shares_on_both_backends_and_a_revoke_seen_by_another_host(any_db: Any) -> None:
    from fnhost.control.shares import Shares
    from fnhost.errors import NotFound

    owner, other = Shares(any_db), Shares(reopen(any_db))
    share = owner.create("team-a", "kv", "counters", "team-b", created_by="k1")
    assert owner.create("team-a", "kv", "counters", "team-b").id == share.id  # an active identical one
    assert other.active("kv", "team-a/counters", "team-b")
    assert not other.active("kv", "team-a/counters", "team-c") and not other.active("secret", "team-a/counters", "team-b")
    assert [s.id for s in other.list("team-b")] == [share.id] and other.list("team-c") == []
    with pytest.raises(NotFound):
        other.revoke("team-b", share.id)  # only the owner revokes
    assert owner.revoke("team-a", share.id, revoked_by="k1").revoked_at is not None
    time.sleep(Shares.ACTIVE_TTL_S + 0.1)  # what another host sees once its cache expires
    assert not other.active("kv", "team-a/counters", "team-b")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_redrive_moves_dead_letters_back_to_their_source_queue(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    import wat_guests
    from conftest import COMPILED

    from fnhost import Host
    from fnhost.errors import Conflict
    from fnhost.stores.errors import InvalidArgument
    from fnhost.triggers import Triggers

    dsn = request.getfixturevalue("postgres_server").new_database() if backend == "postgresql" else None
    host = Host(tmp_path / "data", cache_dir=COMPILED, database=dsn)
    try:
        trigger = '[[triggers.queue]]\nqueue = "{q}"\ndead_letter_queue = "{dlq}"\n'
        host.deploy("a", wat_guests.ECHO, 'name = "a"\n' + trigger.format(q="jobs", dlq="jobs-dlq"))
        host.deploy("b", wat_guests.ECHO, 'name = "b"\n' + trigger.format(q="more", dlq="shared-dlq"))
        host.deploy("c", wat_guests.ECHO, 'name = "c"\n' + trigger.format(q="other", dlq="shared-dlq"))
        triggers = Triggers(host)  # not started: nothing consumes the queues here
        ids = [host.queues.publish("jobs-dlq", f"dead {i}".encode()) for i in range(3)]
        assert triggers.dead_letter_sources("jobs-dlq") == ["jobs"]
        first = triggers.redrive("jobs-dlq", limit=2)
        assert (first.to, first.moved, first.remaining) == ("jobs", ids[:2], 1)
        assert [m.body for m in host.queues.peek("jobs")] == [b"dead 0", b"dead 1"]
        assert {m.receive_count for m in host.queues.peek("jobs")} == {0}  # new messages: their deliveries start over
        assert triggers.redrive("jobs-dlq").moved == ids[2:] and host.queues.depth("jobs-dlq") == 0
        host.queues.publish("shared-dlq", b"x")
        with pytest.raises(Conflict, match="queues more, other all dead-letter into 'shared-dlq'"):
            triggers.redrive("shared-dlq")
        assert triggers.redrive("shared-dlq", to="other").to == "other"
        host.queues.publish("orphans", b"y")
        with pytest.raises(InvalidArgument, match="no queue trigger dead-letters into queue 'orphans'"):
            triggers.redrive("orphans")
        for to, message in (("team-b/jobs", "stays within one namespace"), ("orphans", "into itself")):
            with pytest.raises(InvalidArgument, match=message):
                triggers.redrive("orphans", to=to)
        with pytest.raises(InvalidArgument):
            triggers.redrive("orphans", limit=0)
        assert host.queues.depth("orphans") == 1
    finally:
        host.close()
