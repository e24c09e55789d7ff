"""kv atomics, TTL and batches at the store, on both backends: increments and compare-and-swap from
threads holding their own connections (as two nodes would) never lose an update."""

from __future__ import annotations

import time

import pytest
from test_stores import reopen as other_node
from test_stores import run_threads as together

from fnhost.stores import Database, InvalidArgument, SQLiteKVStore, TooLarge
from fnhost.stores.kv import MAX_BATCH


def test_increment_starts_at_zero_stores_decimal_text_and_takes_negative_deltas(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    assert kv.increment("b", "n", 1) == 1
    assert kv.increment("b", "n", 41) == 42
    assert kv.get("b", "n") == b"42"  # a plain get sees the counter as text
    assert kv.increment("b", "n", -50) == -8
    kv.set("b", "m", b"7")
    assert kv.increment("b", "m", 3) == 10


def test_increment_refuses_a_non_integer_value_and_overflow(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    kv.set("b", "text", b"hello")
    with pytest.raises(InvalidArgument, match="not a decimal integer"):
        kv.increment("b", "text", 1)
    assert kv.get("b", "text") == b"hello"
    kv.increment("b", "big", 2**63 - 1)
    with pytest.raises(InvalidArgument, match="overflows"):
        kv.increment("b", "big", 1)
    assert kv.get("b", "big") == str(2**63 - 1).encode()


def test_two_threads_times_1000_increments_count_2000_exactly(any_db: Database) -> None:
    stores = [SQLiteKVStore(any_db), SQLiteKVStore(other_node(any_db))]

    def count(i: int) -> list[int]:
        return [stores[i].increment("hits", "page", 1) for _ in range(1000)]

    seen = together(2, count)
    assert stores[0].get("hits", "page") == b"2000"
    every = sorted(seen[0] + seen[1])
    assert every == list(range(1, 2001))  # each increment saw a distinct value: none was lost


def test_compare_and_swap_under_contention_has_one_winner_per_round(any_db: Database) -> None:
    stores = [SQLiteKVStore(any_db), SQLiteKVStore(other_node(any_db)), SQLiteKVStore(other_node(any_db))]

    def claim(i: int) -> int:
        """Optimistic increments: read, CAS, retry on a lost race."""
        wins = 0
        while wins < 50:
            old = stores[i].get("b", "v")
            new = str(int(old or b"0") + 1).encode()
            if stores[i].compare_and_swap("b", "v", old, new):
                wins += 1
        return wins

    assert together(3, claim) == [50, 50, 50]
    assert stores[0].get("b", "v") == b"150"


def test_compare_and_swap_none_means_only_if_absent(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    stores = [kv, SQLiteKVStore(other_node(any_db))]
    won = together(2, lambda i: stores[i].compare_and_swap("locks", "job", None, f"owner-{i}".encode()))
    assert sorted(won) == [False, True]
    owner = kv.get("locks", "job")
    assert owner == f"owner-{won.index(True)}".encode()
    assert not kv.compare_and_swap("locks", "job", b"someone-else", b"x")
    assert kv.compare_and_swap("locks", "job", owner, b"released")
    assert kv.get("locks", "job") == b"released"


def test_ttl_expired_keys_are_invisible_at_once_and_purged(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    kv.set_with_ttl("s", "session", b"token", 150)
    kv.set("s", "forever", b"1")
    assert kv.get("s", "session") == b"token"
    assert kv.list_keys("s") == ["forever", "session"]
    time.sleep(0.3)
    assert kv.get("s", "session") is None
    assert kv.list_keys("s") == ["forever"]
    assert kv.get_many("s", ["session", "forever"]) == [None, b"1"]
    # an expired key is absent for the atomics too
    assert kv.compare_and_swap("s", "session", None, b"new")
    kv.set_with_ttl("s", "counter", b"5", 100)
    time.sleep(0.2)
    assert kv.increment("s", "counter", 1) == 1
    kv.set_with_ttl("s", "gone", b"x", 1)
    time.sleep(0.05)
    assert kv.purge_expired() == 1
    count = any_db.db.execute("SELECT count(*) FROM kv_entries WHERE bucket = 's'").fetchone()[0]
    assert count == 3  # forever, session (replaced by the CAS, no TTL), counter (restarted, no TTL)
    assert kv.get("s", "session") == b"new"


def test_set_replaces_a_ttl_and_increment_keeps_a_live_one(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    kv.set_with_ttl("b", "k", b"1", 150)
    kv.increment("b", "k", 1)  # keeps the TTL
    kv.set_with_ttl("b", "j", b"1", 150)
    kv.set("b", "j", b"2")  # a plain set makes it permanent
    time.sleep(0.3)
    assert kv.get("b", "k") is None
    assert kv.get("b", "j") == b"2"
    with pytest.raises(InvalidArgument, match="ttl_ms"):
        kv.set_with_ttl("b", "k", b"1", 0)


def test_get_many_and_set_many(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db, max_value_bytes=8)
    kv.set_many("b", [("a", b"1"), ("c", b"3"), ("a", b"again")])
    assert kv.get_many("b", ["a", "b", "c", "a"]) == [b"again", None, b"3", b"again"]
    assert kv.get_many("b", []) == []
    with pytest.raises(TooLarge):  # one bad entry: none is written
        kv.set_many("b", [("x", b"1"), ("y", b"far too large")])
    assert kv.get_many("b", ["x", "y"]) == [None, None]
    with pytest.raises(TooLarge, match="batch"):
        kv.get_many("b", [f"k{i}" for i in range(MAX_BATCH + 1)])


def test_the_kv_capability_purges_expired_keys_in_the_background(any_db: Database) -> None:
    from fnhost.capabilities import KvCapability

    kv = SQLiteKVStore(any_db)
    capability = KvCapability(kv, purge_interval_s=0.05)
    try:
        kv.set_many("b", [(f"k{i}", b"v") for i in range(5)])
        for i in range(3):
            kv.set_with_ttl("b", f"t{i}", b"v", 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any_db.db.execute("SELECT count(*) FROM kv_entries").fetchone()[0] == 5:
                break
            time.sleep(0.05)
        assert any_db.db.execute("SELECT count(*) FROM kv_entries").fetchone()[0] == 5
    finally:
        capability.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x02\x00", "shorter than its 4-byte count"),
        (b"\x01\x00\x00\x00\x05\x00\x00\x00ab", "ends inside an item"),
        (b"\x01\x00\x00\x00\x01\x00\x00\x00a!", "after its last item"),
        (b"\x01\x00\x00\x00\x01\x00\x00\x00\xff", "not UTF-8"),
        (b"\xff\xff\xff\xff", "ends inside an item's length"),
    ],
)
def test_a_malformed_core_abi_list_is_invalid_not_a_trap(data: bytes, message: str) -> None:
    from fnhost.capabilities.errors import ErrorKind, HostCallError
    from fnhost.capabilities.operations import decode_strings

    with pytest.raises(HostCallError, match=message) as caught:
        decode_strings(data)
    assert caught.value.kind is ErrorKind.INVALID


def test_compare_and_swap_checks_both_values_against_the_size_limit(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db, max_value_bytes=4)
    with pytest.raises(TooLarge, match="kv expected value"):
        kv.compare_and_swap("b", "k", b"12345", b"1")
    with pytest.raises(TooLarge, match="kv value"):
        kv.compare_and_swap("b", "k", None, b"12345")
    assert kv.get("b", "k") is None
