"""The storage layer against real SQLite files: round-trips, limits, concurrency, encryption at rest."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fnhost.errors import NotFound
from fnhost.stores import (
    LIVE,
    AliasRecord,
    Database,
    InvalidArgument,
    InvocationRecord,
    InvocationStore,
    MasterKeyError,
    QueueMessage,
    QueueStats,
    Registry,
    SecretUndecryptable,
    SQLiteKVStore,
    SQLiteQueueStore,
    SQLiteSecretStore,
    StoreUnavailable,
    TooLarge,
    load_master_key,
    new_sortable_id,
)
from fnhost.stores.kv import prefix_successor
from fnhost.stores.secrets import key_fingerprint

SHA_A, SHA_B, SHA_C = ("a" * 64), ("b" * 64), ("c" * 64)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "fnhost.db")


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run `target(i)` in `count` threads started together; re-raise the first failure."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


# --- key-value -------------------------------------------------------------------------------


def test_kv_round_trip_overwrite_delete(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    assert kv.get("b1", "k") is None
    kv.set("b1", "k", b"one")
    kv.set("b2", "k", b"other bucket")
    assert kv.get("b1", "k") == b"one"
    kv.set("b1", "k", bytearray(b"two"))
    assert kv.get("b1", "k") == b"two"
    assert kv.get("b2", "k") == b"other bucket"
    kv.delete("b1", "k")
    kv.delete("b1", "k")  # a missing key is fine
    kv.delete("b1", "never-set")
    assert kv.get("b1", "k") is None
    assert kv.get("b2", "k") == b"other bucket"
    kv.set("b1", "empty", b"")
    assert kv.get("b1", "empty") == b""


def test_kv_survives_reopen(tmp_path: Path) -> None:
    SQLiteKVStore(Database(tmp_path / "x.db")).set("b", "k", b"\x00\xff")
    assert SQLiteKVStore(Database(tmp_path / "x.db")).get("b", "k") == b"\x00\xff"


def test_kv_size_limits_name_limit_and_actual_size(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db, max_key_bytes=8, max_value_bytes=16)
    kv.set("b", "k" * 8, b"v" * 16)  # exactly at both limits
    assert kv.get("b", "k" * 8) == b"v" * 16
    with pytest.raises(TooLarge, match=r"kv key is 9 bytes, over the limit of 8 bytes"):
        kv.set("b", "k" * 9, b"")
    with pytest.raises(TooLarge, match=r"kv key is 10 bytes"):
        kv.get("b", "é" * 5)  # limits count UTF-8 bytes, not characters
    with pytest.raises(TooLarge, match=r"kv value is 17 bytes, over the limit of 16 bytes"):
        kv.set("b", "k", b"v" * 17)
    with pytest.raises(TooLarge, match=r"kv key prefix is 9 bytes"):
        kv.list_keys("b", "p" * 9)
    assert kv.get("b", "k") is None


@pytest.mark.parametrize(
    ("bucket", "key", "value", "message"),
    [
        ("b", "", b"x", "kv key must not be empty"),
        ("b", "\ud800", b"x", "lone surrogate"),
        ("", "k", b"x", "kv bucket name '' is not valid"),
        ("has space", "k", b"x", "kv bucket name 'has space' is not valid"),
        ("b", "k", "text", "kv value must be bytes, got str"),
    ],
)
def test_kv_rejects_malformed_arguments(any_db: Database, bucket: str, key: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        SQLiteKVStore(any_db).set(bucket, key, value)


def test_kv_prefix_listing_treats_percent_and_underscore_literally(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    keys = ["a", "a%", "a%b", "a_", "a_b", "aXb", "ab", "a\\b", "b", "A%"]
    for key in keys:
        kv.set("b", key, b"")
    kv.set("other", "a%z", b"")
    assert kv.list_keys("b", "a%") == ["a%", "a%b"]
    assert kv.list_keys("b", "a_") == ["a_", "a_b"]
    assert kv.list_keys("b", "a\\") == ["a\\b"]
    assert kv.list_keys("b", "a") == ["a", "a%", "a%b", "aXb", "a\\b", "a_", "a_b", "ab"]
    assert kv.list_keys("b", "") == sorted(keys)
    assert kv.list_keys("b", "a", limit=2) == ["a", "a%"]
    assert kv.list_keys("b", "a", limit=0) == []
    assert kv.list_keys("b", "zz") == []
    assert kv.list_keys("missing-bucket") == []


def test_kv_listing_is_utf8_byte_order_including_edge_code_points(any_db: Database) -> None:
    kv = SQLiteKVStore(any_db)
    keys = ["z", "é", "éa", "\U0001f600", "\uffff", "\ud7ffx", "\ue000", "\U0010ffff", "\U0010ffffa", "~"]
    for key in keys:
        kv.set("b", key, b"")
    assert kv.list_keys("b") == sorted(keys, key=lambda k: k.encode())
    assert kv.list_keys("b", "é") == ["é", "éa"]
    assert kv.list_keys("b", "\ud7ff") == ["\ud7ffx"]
    assert kv.list_keys("b", "\U0010ffff") == ["\U0010ffff", "\U0010ffffa"]


def test_prefix_successor() -> None:
    assert prefix_successor("ab") == "ac"
    assert prefix_successor("a\ud7ff") == "a\ue000"
    assert prefix_successor("a\U0010ffff") == "b"
    assert prefix_successor("\U0010ffff\U0010ffff") is None
    assert prefix_successor("") is None


def test_kv_locked_database_raises_store_unavailable(db: Database, tmp_path: Path) -> None:
    kv = SQLiteKVStore(db)
    db.db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(tmp_path / "fnhost.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match=r"SQLiteKVStore.set: the database is unavailable"):
            kv.set("b", "k", b"v")
    finally:
        other.execute("ROLLBACK")
        other.close()
    kv.set("b", "k", b"v")
    assert kv.get("b", "k") == b"v"


def test_kv_on_postgresql_recovers_by_itself_after_the_connection_is_lost(postgres_server: Any) -> None:
    import psycopg

    from fnhost.stores.database import PostgresDatabase

    db = PostgresDatabase(postgres_server.new_database())
    kv = SQLiteKVStore(db)
    kv.set("b", "k", b"v")
    pid = db.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(StoreUnavailable, match=r"SQLiteKVStore.get: the database is unavailable"):
        kv.get("b", "k")
    assert kv.get("b", "k") == b"v"  # a new connection, no restart
    assert "k" not in repr(kv) and "postgres@" in repr(kv)
    db.close()


# --- queues ----------------------------------------------------------------------------------


def test_queue_publish_receive_ack(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db)
    before = time.time()
    ids = [queues.publish("jobs", f"m{i}".encode()) for i in range(3)]
    queues.publish("other", b"x")
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
    assert queues.depth("jobs") == 3
    got = queues.receive("jobs", max_messages=2)
    assert [m.id for m in got] == ids[:2]
    assert [m.body for m in got] == [b"m0", b"m1"]
    first = got[0]
    assert isinstance(first, QueueMessage)
    assert (first.queue, first.receive_count) == ("jobs", 1)
    assert before <= first.enqueued_at <= time.time()
    assert [m.id for m in queues.receive("jobs", max_messages=10)] == [ids[2]]
    assert queues.receive("jobs") == []
    assert queues.depth("jobs") == 3  # received but not acked
    assert queues.ack("jobs", ids[0]) is True
    assert queues.ack("jobs", ids[0]) is False
    assert queues.ack("other", ids[1]) is False  # ids are scoped to their queue
    assert queues.depth("jobs") == 2
    assert queues.depth("empty") == 0


def test_queue_ids_sort_in_publish_order(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db)
    ids = [queues.publish("q", b"") for _ in range(300)]
    assert sorted(ids) == ids
    assert [m.id for m in queues.peek("q", limit=300)] == ids


def test_new_sortable_id_unique_and_ordered() -> None:
    ids = [new_sortable_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids
    assert int(ids[0][:12], 16) == pytest.approx(time.time() * 1000, abs=5_000)


def test_new_sortable_id_random_part_differs_in_a_forked_child() -> None:
    # the random bits are drawn ahead in batches: a child must not reuse what its parent drew
    new_sortable_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_sortable_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_sortable_id()
    os.waitpid(pid, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert len(theirs) == 32 and theirs[16:] != mine[16:]


def test_queue_visibility_timeout_redelivers(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db)
    message_id = queues.publish("q", b"work")
    first = queues.receive("q", visibility_timeout_s=0.2)
    assert [(m.id, m.receive_count) for m in first] == [(message_id, 1)]
    assert queues.receive("q", visibility_timeout_s=0.2) == []
    time.sleep(0.3)
    second = queues.receive("q", visibility_timeout_s=30)
    assert [(m.id, m.body, m.receive_count) for m in second] == [(message_id, b"work", 2)]
    assert second[0].enqueued_at == first[0].enqueued_at
    assert queues.receive("q") == []


def test_queue_release_makes_a_message_visible_again(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db)
    message_id = queues.publish("q", b"x")
    queues.receive("q")
    assert queues.release("q", message_id) is True
    assert [m.receive_count for m in queues.receive("q")] == [2]
    assert queues.release("q", "no-such-id") is False


def test_queue_peek_purge_and_listing(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db)
    for body in (b"1", b"2", b"3"):
        queues.publish("b-queue", body)
    queues.publish("a-queue", b"x")
    assert [m.body for m in queues.peek("b-queue", limit=2)] == [b"1", b"2"]
    assert [m.receive_count for m in queues.peek("b-queue")] == [0, 0, 0]
    queues.receive("b-queue", max_messages=1)
    assert [m.receive_count for m in queues.peek("b-queue")] == [1, 0, 0]  # peek shows in-flight too
    assert len(queues.receive("b-queue")) == 2  # peek claimed nothing
    assert queues.queues() == ["a-queue", "b-queue"]
    assert queues.queue_stats() == [QueueStats("a-queue", 1, 0), QueueStats("b-queue", 3, 3)]
    assert queues.purge("b-queue") == 3
    assert queues.purge("b-queue") == 0
    assert queues.queues() == ["a-queue"]


def test_queue_limits_and_arguments(any_db: Database) -> None:
    queues = SQLiteQueueStore(any_db, max_message_bytes=10)
    queues.publish("q", b"x" * 10)
    with pytest.raises(TooLarge, match=r"queue message is 11 bytes, over the limit of 10 bytes"):
        queues.publish("q", b"x" * 11)
    with pytest.raises(InvalidArgument, match=r"queue name 'bad/na/me'"):
        queues.publish("bad/na/me", b"")
    with pytest.raises(InvalidArgument, match=r"max_messages must be an integer in 1..1000, got 0"):
        queues.receive("q", max_messages=0)
    with pytest.raises(InvalidArgument, match=r"visibility_timeout_s"):
        queues.receive("q", visibility_timeout_s=-1)
    with pytest.raises(InvalidArgument, match=r"visibility_timeout_s"):
        queues.receive("q", visibility_timeout_s=float("nan"))
    assert queues.depth("q") == 1


def test_queue_messages_of_an_older_schema_get_chain_depth_0_and_keep_it_through_dead_letters(
    any_db: Database,
) -> None:
    """The chain-depth migration (fnhost.chains) on each backend: a message stored before it reads back at
    depth 0; depths are stored, kept by `move`, and a message over the limit is never stored."""
    from fnhost.stores.errors import ChainTooDeep
    from fnhost.stores.queues import MIGRATIONS

    any_db.migrate("queues", MIGRATIONS[:1])  # the schema before the chain_depth column
    with any_db.transaction() as db:
        db.execute(
            "INSERT INTO queue_messages (id, queue, body, enqueued_at, visible_at) VALUES ('00', 'q', ?, 0, 0)",
            [b"from before"],
        )
    queues = SQLiteQueueStore(reopen(any_db), max_chain_depth=3)
    assert [(m.id, m.chain_depth) for m in queues.peek("q")] == [("00", 0)]
    queues.publish("q", b"deep", chain_depth=3)
    with pytest.raises(ChainTooDeep, match=r"queue 'q' would be at chain depth 4, over the limit of 3"):
        queues.publish("q", b"deeper", chain_depth=4)
    received = queues.receive("q", max_messages=10)
    assert [(m.body, m.chain_depth) for m in received] == [(b"from before", 0), (b"deep", 3)]
    queues.move("q", received, "q-dlq")
    assert [(m.body, m.chain_depth) for m in queues.peek("q-dlq")] == [(b"from before", 0), (b"deep", 3)]
    assert queues.depth("q") == 0


def test_queue_on_postgresql_keeps_the_planner_informed_after_a_burst(postgres_server: Any) -> None:
    """Without statistics PostgreSQL guesses a queue holds ~0.5% of the table, sorts every row of it on each
    receive and joins them all to the claim (30 ms instead of 1 ms at 4,000 messages): the store refreshes
    the statistics itself once it has changed enough rows, so the receive walks the index and stops."""
    from fnhost.stores.database import PostgresDatabase

    db = PostgresDatabase(postgres_server.new_database())
    queues = SQLiteQueueStore(db)
    for i in range(1500):
        queues.publish("burst", b"m%d" % i)

    def plan(sql: str) -> dict[str, Any]:
        return dict(db.db.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0][0]["Plan"])

    everything = plan("SELECT id FROM queue_messages WHERE queue = 'burst'")
    assert everything["Plan Rows"] >= 1000, everything  # it knows the queue is big: no guessed handful
    oldest = plan("SELECT id FROM queue_messages WHERE queue = 'burst' ORDER BY visible_at, id LIMIT 10")
    assert oldest["Plans"][0]["Node Type"] in ("Index Scan", "Index Only Scan"), oldest  # reads 10 rows, sorts none
    assert len(queues.receive("burst", 10)) == 10
    db.close()


def test_prepared_statements_on_postgresql_survive_a_column_another_node_adds(postgres_server: Any) -> None:
    """The stores' hot statements are prepared (psycopg, from their 5th run on a connection): a migration
    on another node must not break them ("cached plan must not change result type" hits `SELECT *`)."""
    from fnhost.stores.database import PostgresDatabase

    db = PostgresDatabase(postgres_server.new_database())
    queues = SQLiteQueueStore(db)
    for i in range(8):
        queues.publish("q", b"m%d" % i)
        assert queues.ack_many("q", queues.receive("q", 1)) != []
    prepared = db.db.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    assert prepared >= 3, prepared  # publish, receive and ack on this connection
    other = PostgresDatabase(db.dsn)
    with other.transaction() as o:
        o.execute("ALTER TABLE queue_messages ADD COLUMN added_later TEXT")
    queues.publish("q", b"after")
    (message,) = queues.receive("q", 1)
    assert message.body == b"after" and queues.ack_many("q", [message]) == [message.id]
    other.close()
    db.close()


def test_queue_acks_go_to_the_background_only_where_writes_overlap(any_db: Database) -> None:
    from fnhost.stores.database import PostgresDatabase

    assert SQLiteQueueStore(any_db).acks_in_background is isinstance(any_db, PostgresDatabase)


def reopen(db: Any) -> Any:
    """Another handle on the same database, as another process or node would have."""
    from fnhost.stores.database import PostgresDatabase

    return PostgresDatabase(db.dsn) if isinstance(db, PostgresDatabase) else Database(db.path)


@pytest.mark.parametrize("batch", [1, 10])
def test_concurrent_receivers_never_share_a_message(any_db: Database, batch: int) -> None:
    """Four receivers over two Database objects (as two processes or nodes would have) drain one queue.

    On PostgreSQL, batch 1 is where a plain `UPDATE ... IN (SELECT ... LIMIT)` handed one message to
    two consumers (and batch 10 where it deadlocked): the claim must skip rows another receiver holds.
    """
    databases = [any_db, reopen(any_db)]
    publisher = SQLiteQueueStore(databases[0])
    published = {publisher.publish("q", str(i).encode()) for i in range(400)}
    stores = [SQLiteQueueStore(databases[i % 2]) for i in range(4)]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while claimed := stores[i].receive("q", max_messages=batch, visibility_timeout_s=600):
            got += [m.id for m in claimed]
            time.sleep(0.001)  # let the other receivers in, so the claims really interleave
        return got

    per_receiver = run_threads(4, drain)
    everything = [message_id for ids in per_receiver for message_id in ids]
    assert len(everything) == len(set(everything)) == 400
    assert set(everything) == published
    assert sum(1 for ids in per_receiver if ids) >= 2  # they really did run side by side
    assert all(m.receive_count == 1 for m in publisher.peek("q", limit=400))


# --- secrets ---------------------------------------------------------------------------------

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(1, 33))


def test_secrets_round_trip(any_db: Database) -> None:
    secrets = SQLiteSecretStore(any_db, KEY_1)
    assert secrets.get("api-token") is None
    secrets.set("api-token", "tok-1")
    secrets.set("db.password", "pässwörd ✓")
    secrets.set("empty", "")
    assert secrets.get("api-token") == "tok-1"
    assert secrets.get("db.password") == "pässwörd ✓"
    assert secrets.get("empty") == ""
    secrets.set("api-token", "tok-2")
    assert secrets.get("api-token") == "tok-2"
    assert secrets.names() == ["api-token", "db.password", "empty"]
    assert secrets.delete("api-token") is True
    assert secrets.delete("api-token") is False
    assert secrets.get("api-token") is None
    # Another store over the same file with the same key reads them.
    assert SQLiteSecretStore(reopen(any_db), KEY_1).get("db.password") == "pässwörd ✓"


def test_secret_plaintext_never_in_database_files(db: Database) -> None:
    secrets = SQLiteSecretStore(db, KEY_1)
    plaintext = "PLAINTEXT-MARKER-8f3a1c"
    secrets.set("marker-name", plaintext)
    secrets.set("marker-name", plaintext)  # a rewrite too
    files = [db.path, db.path.with_name(db.path.name + "-wal")]
    stored = b"".join(p.read_bytes() for p in files if p.exists())
    assert b"marker-name" in stored  # the bytes searched do hold the secret's row
    assert plaintext.encode() not in stored
    assert base64.b64encode(plaintext.encode()) not in stored
    db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert plaintext.encode() not in db.path.read_bytes()
    assert plaintext not in repr(secrets) and KEY_1.hex() not in repr(secrets)


def test_secret_nonce_is_fresh_per_write(any_db: Database) -> None:
    secrets = SQLiteSecretStore(any_db, KEY_1)
    rows = []
    for _ in range(2):
        secrets.set("s", "same value")
        rows.append(any_db.db.execute("SELECT nonce, ciphertext FROM secrets WHERE name = 's'").fetchone())
    assert len(rows[0][0]) == 12
    assert rows[0][0] != rows[1][0] and rows[0][1] != rows[1][1]


def test_a_host_with_another_master_key_refuses_to_start(any_db: Database) -> None:
    SQLiteSecretStore(any_db, KEY_1).set("x", "top-secret-value")
    with pytest.raises(MasterKeyError) as info:
        SQLiteSecretStore(reopen(any_db), KEY_2)
    message = str(info.value)
    assert f"is not the key the database's secrets are sealed with (fingerprint {key_fingerprint(KEY_1)})" in message
    assert "must share FNHOST_MASTER_KEY" in message
    assert "top-secret-value" not in message and KEY_2.hex() not in message
    assert SQLiteSecretStore(any_db, KEY_1).get("x") == "top-secret-value"


def test_an_existing_database_takes_the_key_its_secrets_were_written_with(tmp_path: Path) -> None:
    """A database from before the key check: the check row is seeded from its secrets' fingerprint."""
    db = Database(tmp_path / "old.db")
    SQLiteSecretStore(db, KEY_1).set("x", "v")
    with db.transaction() as tx:
        tx.execute("DROP TABLE master_key_check")
        tx.execute("UPDATE schema_versions SET version = 1 WHERE component = 'secrets'")
    with pytest.raises(MasterKeyError, match="is not the key"):
        SQLiteSecretStore(Database(tmp_path / "old.db"), KEY_2)
    assert SQLiteSecretStore(Database(tmp_path / "old.db"), KEY_1).get("x") == "v"


def test_a_row_written_under_another_key_names_the_cause(any_db: Database, tmp_path: Path) -> None:
    other = Database(tmp_path / "other.db")  # another deployment, with another key
    SQLiteSecretStore(other, KEY_2).set("x", "top-secret-value")
    row = other.db.execute("SELECT name, nonce, ciphertext, key_fingerprint, updated_at FROM secrets").fetchone()
    secrets = SQLiteSecretStore(any_db, KEY_1)
    with any_db.transaction() as tx:  # its row copied in by hand
        tx.execute("INSERT INTO secrets VALUES (?, ?, ?, ?, ?)", [row[0], bytes(row[1]), bytes(row[2]), *row[3:]])
    with pytest.raises(SecretUndecryptable) as info:
        secrets.get("x")
    message = str(info.value)
    assert "secret 'x' cannot be decrypted: the master key differs from the one it was written with" in message
    assert "top-secret-value" not in message


def test_secret_ciphertext_moved_to_another_name_does_not_decrypt(any_db: Database) -> None:
    secrets = SQLiteSecretStore(any_db, KEY_1)
    secrets.set("a", "value-of-a")
    secrets.set("b", "value-of-b")
    with any_db.transaction() as tx:
        tx.execute(
            "UPDATE secrets SET (nonce, ciphertext) = "
            "(SELECT nonce, ciphertext FROM secrets WHERE name = 'a') WHERE name = 'b'"
        )
    with pytest.raises(SecretUndecryptable, match=r"secret 'b' cannot be decrypted: .*copied from another"):
        secrets.get("b")
    assert secrets.get("a") == "value-of-a"


def test_secret_errors_never_echo_the_value(any_db: Database) -> None:
    secrets = SQLiteSecretStore(any_db, KEY_1, max_value_bytes=8)
    with pytest.raises(TooLarge) as info:
        secrets.set("s", "LEAKY-VALUE")
    assert "LEAKY" not in str(info.value) and "11 bytes" in str(info.value)
    with pytest.raises(InvalidArgument) as invalid:
        secrets.set("s", "LEAK\ud800")
    assert "LEAK" not in str(invalid.value)
    with pytest.raises(MasterKeyError, match="32 bytes"):
        SQLiteSecretStore(any_db, b"short")


def test_master_key_file_created_0600_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FNHOST_MASTER_KEY", raising=False)
    old_umask = os.umask(0)  # even with a permissive umask the file is private
    try:
        key = load_master_key(tmp_path / "data")
    finally:
        os.umask(old_umask)
    path = tmp_path / "data" / "master.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text().strip()) == key
    assert load_master_key(tmp_path / "data") == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]  # no temporary left over


def test_master_key_concurrent_first_use_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FNHOST_MASTER_KEY", raising=False)
    keys = run_threads(16, lambda _: load_master_key(tmp_path))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]


def test_master_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FNHOST_MASTER_KEY", base64.b64encode(KEY_2).decode())
    assert load_master_key(tmp_path) == KEY_2
    assert not (tmp_path / "master.key").exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (base64.b64encode(b"x" * 16).decode(), "it decodes to 16 bytes"),
        ("not base64 at all!", "it is not valid base64"),
        ("", "it decodes to 0 bytes"),
    ],
)
def test_malformed_master_key_environment_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("FNHOST_MASTER_KEY", value)
    with pytest.raises(MasterKeyError) as info:
        load_master_key(tmp_path)
    message = str(info.value)
    assert "FNHOST_MASTER_KEY" in message and problem in message
    assert "base64.b64encode(os.urandom(32))" in message


def test_malformed_master_key_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FNHOST_MASTER_KEY", raising=False)
    (tmp_path / "master.key").write_text("c2hvcnQ=\n")
    with pytest.raises(MasterKeyError, match=r"master\.key must hold .* it decodes to 5 bytes"):
        load_master_key(tmp_path)


# --- registry --------------------------------------------------------------------------------


def test_registry_versions_number_up_and_redeploy_is_idempotent(any_db: Database) -> None:
    registry = Registry(any_db)
    v1 = registry.add_version("hello", SHA_A, '{"name": "hello"}', "alice")
    assert (v1.name, v1.version, v1.sha256, v1.created_by) == ("hello", 1, SHA_A, "alice")
    again = registry.add_version("hello", SHA_A, '{ "name" : "hello" }', "bob")  # same JSON value
    assert again == v1
    v2 = registry.add_version("hello", SHA_B, '{"name": "hello"}', None)
    assert v2.version == 2
    v3 = registry.add_version("hello", SHA_B, '{"name": "hello", "public": true}', None)
    assert v3.version == 3  # same wasm, new manifest: a new version
    v4 = registry.add_version("hello", SHA_A, '{"name": "hello"}', None)
    assert v4.version == 4  # only the newest version counts for idempotence
    assert [v.version for v in registry.versions("hello")] == [1, 2, 3, 4]
    assert registry.latest("hello") == v4
    assert registry.get_version("hello", 2) == v2
    assert registry.get_version("hello", 9) is None
    assert registry.latest("nope") is None
    assert registry.versions("nope") == []
    assert Registry(reopen(any_db)).get_version("hello", 1) == v1  # persisted


def test_registry_live_follows_deploys_until_pinned(any_db: Database) -> None:
    registry = Registry(any_db)
    registry.add_version("f", SHA_A, "{}", None)
    assert registry.resolve("f").version == 1
    registry.add_version("f", SHA_B, "{}", None)
    assert registry.resolve("f").version == 2
    assert registry.set_alias("f", LIVE, 1) == AliasRecord(LIVE, 1, True)
    registry.add_version("f", SHA_C, "{}", None)
    assert registry.resolve("f").version == 1  # pinned live stays
    assert registry.resolve("f", LIVE).sha256 == SHA_A
    assert registry.unpin_live("f") == AliasRecord(LIVE, 3, False)
    assert registry.resolve("f").version == 3
    registry.add_version("f", SHA_A, "{}", None)
    assert registry.resolve("f").version == 4  # follows again


def test_registry_named_aliases(any_db: Database) -> None:
    registry = Registry(any_db)
    for sha in (SHA_A, SHA_B, SHA_C):
        registry.add_version("f", sha, "{}", None)
    registry.set_alias("f", "stable", 1)
    registry.add_version("f", SHA_A, '{"x": 1}', None)
    assert registry.resolve("f", "stable").sha256 == SHA_A and registry.resolve("f", "stable").version == 1
    registry.set_alias("f", "stable", 2)
    assert registry.resolve("f", "stable").version == 2
    assert registry.aliases("f") == [AliasRecord(LIVE, 4, False), AliasRecord("stable", 2, True)]
    for bad in ("1abc", "Beta", "", "a" * 64, "has_underscore"):
        with pytest.raises(InvalidArgument, match="alias"):
            registry.set_alias("f", bad, 1)
    with pytest.raises(NotFound, match=r"function 'f' has no version 9 \(its versions are 1..4\)"):
        registry.set_alias("f", "beta", 9)
    with pytest.raises(NotFound, match=r"function 'ghost' does not exist"):
        registry.set_alias("ghost", "beta", 1)
    assert registry.delete_alias("f", "stable") is True
    assert registry.delete_alias("f", "stable") is False
    with pytest.raises(InvalidArgument, match="'live' alias cannot be deleted"):
        registry.delete_alias("f", LIVE)


def test_registry_resolve_qualifiers_and_errors(any_db: Database) -> None:
    registry = Registry(any_db)
    registry.add_version("alpha", SHA_A, "{}", None)
    registry.add_version("alpha", SHA_B, "{}", None)
    registry.add_version("beta", SHA_C, "{}", None)
    registry.set_alias("alpha", "prod", 1)
    assert registry.resolve("alpha", None).version == 2
    assert registry.resolve("alpha", "1").version == 1
    assert registry.resolve("alpha", 1).version == 1
    assert registry.resolve("alpha", "prod").version == 1
    with pytest.raises(NotFound) as missing:
        registry.resolve("gamma")
    # the others are not named: the caller may not be allowed to know of them
    assert (
        str(missing.value)
        == "function 'gamma' does not exist; `fnhost list` (GET /v1/functions) shows the ones you may use"
    )
    with pytest.raises(NotFound) as no_version:
        registry.resolve("alpha", "7")
    assert str(no_version.value) == "function 'alpha' has no version 7 (its versions are 1..2)"
    with pytest.raises(NotFound) as no_alias:
        registry.resolve("alpha", "staging")
    assert str(no_alias.value).startswith("function 'alpha' has no alias 'staging' (its aliases: live, prod)")
    with pytest.raises(NotFound, match=r"has no alias '²'"):
        registry.resolve("alpha", "²")  # a Unicode digit is not a version number


def test_registry_functions_listing(any_db: Database) -> None:
    registry = Registry(any_db)
    assert registry.functions() == []
    registry.add_version("zeta", SHA_A, "{}", None)
    registry.add_version("alpha", SHA_A, "{}", None)
    registry.add_version("alpha", SHA_B, "{}", None)
    registry.set_alias("alpha", "prod", 1)
    listed = registry.functions()
    assert [(f.name, f.latest_version) for f in listed] == [("alpha", 2), ("zeta", 1)]
    assert listed[0].aliases == (AliasRecord(LIVE, 2, False), AliasRecord("prod", 1, True))
    assert listed[1].aliases == (AliasRecord(LIVE, 1, False),)
    assert registry.get_function("alpha") == listed[0]
    assert registry.get_function("nope") is None


def test_registry_delete_returns_unreferenced_hashes(any_db: Database) -> None:
    registry = Registry(any_db)
    registry.add_version("one", SHA_A, "{}", None)
    registry.add_version("one", SHA_B, "{}", None)
    registry.add_version("one", SHA_A, '{"v": 3}', None)
    registry.add_version("two", SHA_B, "{}", None)
    registry.set_alias("one", "prod", 1)
    assert registry.delete_function("one") == [SHA_A]  # SHA_B is still used by 'two'
    assert registry.versions("one") == [] and registry.aliases("one") == []
    assert [f.name for f in registry.functions()] == ["two"]
    with pytest.raises(NotFound, match=r"function 'one' does not exist; "):
        registry.resolve("one")
    with pytest.raises(NotFound, match="function 'one' does not exist"):
        registry.delete_function("one")
    assert registry.delete_function("two") == [SHA_B]
    assert registry.add_version("one", SHA_C, "{}", None).version == 1  # a new life starts at 1


def test_registry_rejects_malformed_deploys(any_db: Database) -> None:
    registry = Registry(any_db)
    with pytest.raises(InvalidArgument, match="function name 'Bad_Name'"):
        registry.add_version("Bad_Name", SHA_A, "{}", None)
    with pytest.raises(InvalidArgument, match="sha256 'ABC' is not valid"):
        registry.add_version("f", "ABC", "{}", None)
    with pytest.raises(InvalidArgument, match="manifest_json is not valid JSON"):
        registry.add_version("f", SHA_A, "{not json", None)
    assert registry.functions() == []


def test_registry_concurrent_deploys_get_distinct_versions(any_db: Database) -> None:
    registries = [Registry(any_db), Registry(reopen(any_db))]
    shas = [f"{i:064x}" for i in range(12)]
    records = run_threads(12, lambda i: registries[i % 2].add_version("f", shas[i], "{}", None))
    assert sorted(r.version for r in records) == list(range(1, 13))
    assert registries[0].resolve("f").version == 12


# --- invocations -----------------------------------------------------------------------------


def invocation(function: str, started_at: float, id: str | None = None, **changes: Any) -> InvocationRecord:
    fields: dict[str, Any] = {
        "id": id or new_sortable_id(),
        "function": function,
        "version": 1,
        "trigger": "invoke",
        "outcome": "ok",
        "error": None,
        "started_at": started_at,
        "duration_ms": 1.5,
        "billed_ms": 2,
        "fuel_consumed": 12345,
        "memory_used_bytes": 65536,
        "memory_limit_mb": 128,
        "logs": "line 1\nline 2",
        "report": "REPORT ...",
    }
    fields.update(changes)
    return InvocationRecord(**fields)


def test_invocation_round_trip(any_db: Database) -> None:
    store = InvocationStore(any_db)
    rec = invocation("f", 1000.25, outcome="timeout", error="timed out after 5000 ms", trigger="http")
    store.record(rec)
    assert store.get(rec.id) == rec
    assert store.get("missing") is None
    assert InvocationStore(reopen(any_db)).get(rec.id) == rec


def test_invocation_listing_newest_first_with_paging(any_db: Database) -> None:
    store = InvocationStore(any_db)
    records = [invocation("f" if i % 2 else "g", 1000.0 + i) for i in range(10)]
    records.append(invocation("f", 1009.0, id="0-same-time"))  # ties break on id
    for rec in records:
        store.record(rec)
    newest_first = sorted(records, key=lambda r: (r.started_at, r.id), reverse=True)
    assert store.list(limit=100) == newest_first
    only_f = [r for r in newest_first if r.function == "f"]
    assert store.list("f") == only_f
    page1 = store.list("f", limit=2)
    page2 = store.list("f", limit=2, before=page1[-1].id)
    page3 = store.list("f", limit=10, before=page2[-1].id)
    assert page1 + page2 + page3 == only_f
    assert store.list("nobody") == []
    with pytest.raises(NotFound, match="'before' cursor"):
        store.list(before="missing")
    with pytest.raises(InvalidArgument, match="limit"):
        store.list(limit=0)


def test_invocation_retention_is_per_function(any_db: Database) -> None:
    store = InvocationStore(any_db, max_per_function=5)
    f_records = [invocation("f", 1000.0 + i) for i in range(12)]
    g_records = [invocation("g", 500.0 + i) for i in range(3)]
    for rec in g_records + f_records:
        store.record(rec)
    kept = store.list("f", limit=100)
    assert kept == list(reversed(f_records[-5:]))
    assert store.get(f_records[6].id) is None and store.get(f_records[7].id) == f_records[7]
    assert store.list("g", limit=100) == list(reversed(g_records))
    assert any_db.db.execute("SELECT count(*) FROM invocations").fetchone()[0] == 8
    late = invocation("f", 1.0)  # older than everything kept: recorded, then aged out at once
    store.record(late)
    assert store.get(late.id) is None
    assert len(store.list("f")) == 5


def test_invocation_records_are_bounded_in_bytes_per_record_function_and_total(db: Database) -> None:
    store = InvocationStore(db, max_record_bytes=1024, max_bytes_per_function=4096, max_bytes=8192)
    big = "x" * 600  # two lines of these fit a record
    chatty = [invocation("f", 1000.0 + i, logs="\n".join([big] * 10), error="e" * 5000) for i in range(20)]
    for rec in chatty:
        store.record(rec)
    kept = store.list("f", limit=100)
    assert all(len(r.logs.encode()) <= 1024 + 100 and len((r.error or "").encode()) <= 1024 + 100 for r in kept)
    assert "more characters of logs not stored" in kept[0].logs
    assert kept[0].id == chatty[-1].id  # the newest survive
    size = "SELECT sum(size) FROM invocations WHERE function = ?"
    assert db.db.execute(size, ["f"]).fetchone()[0] <= 4096
    for i in range(40):  # many functions: the total budget takes the oldest of any of them
        store.record(invocation(f"g{i}", 2000.0 + i, logs=big))
    assert db.db.execute("SELECT sum(size) FROM invocations").fetchone()[0] <= 8192
    assert store.list("g39", limit=1) and not store.list("g0", limit=1)
    page = store.page("f", limit=100)
    assert page.next_before is None and page.records == kept[: len(page.records)]
    tight = InvocationStore(db, max_page_bytes=1)  # a page holds at least one record
    first = tight.page(None, limit=100)
    assert len(first.records) == 1 and first.next_before == first.records[0].id


def test_record_deploy_says_whether_it_created(db: Database) -> None:
    registry = Registry(db)
    first, created = registry.record_deploy("f", SHA_A, '{"name": "f"}')
    assert (first.version, created) == (1, True)
    again, created = registry.record_deploy("f", SHA_A, '{"name": "f"}')
    assert (again, created) == (first, False)
    assert registry.record_deploy("f", SHA_B, '{"name": "f"}')[1] is True
