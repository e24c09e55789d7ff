"""Durable queues with at-least-once delivery (the store behind the `queue` capability and trigger).

A received message stays in the queue, invisible, until it is acked or its visibility timeout
passes; then it is delivered again with a higher `receive_count`. Claiming happens in one
`BEGIN IMMEDIATE` transaction (an `UPDATE ... RETURNING`), and SQLite admits one writer at a time
across threads and processes, so no visible message is ever handed to two receivers.

PostgreSQL plans a receive well only while it knows how many rows a queue holds: with no statistics
(a new table, a burst into a new queue) it assumes a handful, sorts every row of the queue and joins
them all to the claim, ~30 ms a receive at 4,000 messages instead of ~1 ms. Autovacuum refreshes
statistics only after a minute or more, so the store refreshes them itself (`ANALYZE`, a few ms)
once it has changed `ANALYZE_AFTER_ROWS` rows since the last refresh, at most every
`ANALYZE_INTERVAL_S`.

Each message carries the chain depth of what published it (`fnhost.chains`): no message is stored
deeper than `max_chain_depth` (`publish` raises `ChainTooDeep`); a dead-lettered message keeps its
depth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..chains import DEFAULT_MAX_CHAIN_DEPTH
from ._common import (
    SQLiteStore,
    bytes_within,
    int_in_range,
    new_sortable_id,
    require_resource_name,
    sql_migration,
    translate_database_errors,
)
from .database import AnyDatabase
from .errors import ChainTooDeep, InvalidArgument

MAX_RECEIVE = 1000
"""The most messages one `receive` call may ask for."""
MAX_VISIBILITY_TIMEOUT_S = 12 * 3600.0
ACK_CHUNK = 500
"""Deliveries acked by one statement."""
ANALYZE_AFTER_ROWS = 1000
ANALYZE_INTERVAL_S = 10.0

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE queue_messages ("
        " id TEXT NOT NULL,"
        " queue TEXT NOT NULL,"
        " body BLOB NOT NULL,"
        " enqueued_at REAL NOT NULL,"
        " visible_at REAL NOT NULL,"
        " receive_count INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (queue, id)"
        ")",
        "CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at, id)",
    ),
    sql_migration("ALTER TABLE queue_messages ADD COLUMN chain_depth INTEGER NOT NULL DEFAULT 0"),
]


@dataclass(frozen=True)
class QueueMessage:
    id: str
    queue: str
    body: bytes
    receive_count: int
    """Deliveries so far, the current one included (0 for a message seen only by `peek`)."""
    enqueued_at: float
    """Unix seconds."""
    chain_depth: int = 0
    """How many invocations led to it: 0 from outside, N + 1 from a function at depth N (`fnhost.chains`)."""


@dataclass(frozen=True)
class QueueStats:
    queue: str
    depth: int
    """Messages not yet acked, in flight or not."""
    in_flight: int
    """Messages received and not yet acked whose visibility timeout has not passed."""


class QueueStore(Protocol):
    @property
    def acks_in_background(self) -> bool:
        """Whether a consumer should ack on another thread while it goes on (its backend's writes overlap)."""
        ...

    def publish(self, queue: str, body: bytes, *, chain_depth: int = 0) -> str:
        """Append a message; return its id (unique, sorts by publish time). `chain_depth` over the
        store's `max_chain_depth` is `ChainTooDeep`."""
        ...

    def receive(
        self, queue: str, max_messages: int = 10, visibility_timeout_s: float = 30.0
    ) -> list[QueueMessage]:
        """Claim up to `max_messages` visible messages, oldest first, hiding them for the timeout."""
        ...

    def ack(self, queue: str, message_id: str) -> bool:
        """Delete a processed message; False if it no longer exists."""
        ...

    def ack_many(self, queue: str, deliveries: Sequence[QueueMessage]) -> list[str]:
        """Delete several processed deliveries in one transaction; return the ids deleted. A delivery's
        receive count is its receipt: a message received again since (its timeout passed) is kept."""
        ...

    def move(self, queue: str, messages: Sequence[QueueMessage], to_queue: str) -> list[str]:
        """Move messages still in `queue` to `to_queue` (delete + publish, one transaction); the ids moved."""
        ...

    def release(self, queue: str, message_id: str, delay_s: float = 0.0) -> bool:
        """Make a received message visible again after `delay_s`; False if it no longer exists."""
        ...

    def depth(self, queue: str) -> int:
        """Messages in `queue` not yet acked (visible or in flight)."""
        ...

    def queues(self) -> list[str]:
        """Names of the queues that hold messages, sorted."""
        ...

    def queue_stats(self) -> list[QueueStats]:
        """Depth and in-flight count of every queue that holds messages, sorted by name."""
        ...

    def peek(self, queue: str, limit: int = 10) -> list[QueueMessage]:
        """The oldest messages of `queue`, without claiming them."""
        ...

    def purge(self, queue: str) -> int:
        """Delete every message of `queue`; return how many were deleted."""
        ...


_COLUMNS = "id, queue, body, receive_count, enqueued_at, chain_depth"


def _message(row: Any) -> QueueMessage:
    return QueueMessage(
        id=row[0], queue=row[1], body=bytes(row[2]), receive_count=row[3], enqueued_at=row[4], chain_depth=row[5]
    )


class SQLiteQueueStore(SQLiteStore):
    """`QueueStore` over the host database. Raises `InvalidArgument`, `TooLarge`, `StoreUnavailable`.

    `ack_many` (what queue triggers use) takes the deliveries: the receive count is the receipt, so an
    ack that comes after its visibility timeout passed cannot delete the message's redelivery. `ack`
    takes a bare id (operators, tests) and deletes whatever delivery is out.
    """

    def __init__(
        self, db: AnyDatabase, max_message_bytes: int = 256 * 1024, max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH
    ) -> None:
        super().__init__(db, "queues", MIGRATIONS)
        self.max_message_bytes = max_message_bytes
        self.max_chain_depth = max_chain_depth
        self._statistics_lock = threading.Lock()
        self._changed_rows = 0
        self._analyzed_at = -ANALYZE_INTERVAL_S

    def _changed(self, rows: int) -> None:
        """Count rows this store changed; refresh the table's statistics when due (see the module docstring)."""
        now = time.monotonic()
        with self._statistics_lock:
            self._changed_rows += rows
            if self._changed_rows < ANALYZE_AFTER_ROWS or now - self._analyzed_at < ANALYZE_INTERVAL_S:
                return
            self._changed_rows, self._analyzed_at = 0, now
        self._db.analyze("queue_messages")

    @property
    def acks_in_background(self) -> bool:
        """Whether a consumer gains by acking on another thread while it goes on: on PostgreSQL an ack is
        a round trip to overlap; on SQLite it would contend with the consumer's own next receive for the
        one writer lock, and lose more than it saves (docs/performance.md, "Queue triggers")."""
        return self._db.dialect.concurrent_writers

    def publish(self, queue: str, body: bytes, *, chain_depth: int = 0) -> str:
        if chain_depth > self.max_chain_depth:
            raise ChainTooDeep(f"a message to queue '{queue}'", chain_depth, self.max_chain_depth)
        return self._insert(queue, body, chain_depth)

    @translate_database_errors
    def _insert(self, queue: str, body: bytes, chain_depth: int) -> str:
        require_resource_name("queue", queue)
        data = bytes_within("queue message", body, self.max_message_bytes)
        int_in_range("chain_depth", chain_depth, 0, 2**31 - 1)
        message_id = new_sortable_id()
        now = self._db.dialect.now
        self._db.db.execute(  # one statement: atomic by itself, one round trip
            "INSERT INTO queue_messages (id, queue, body, enqueued_at, visible_at, chain_depth)"
            f" VALUES (?, ?, ?, {now}, {now}, ?)",
            [message_id, queue, data, chain_depth],
        )
        self._changed(1)
        return message_id

    @translate_database_errors
    def receive(
        self, queue: str, max_messages: int = 10, visibility_timeout_s: float = 30.0
    ) -> list[QueueMessage]:
        require_resource_name("queue", queue)
        int_in_range("max_messages", max_messages, 1, MAX_RECEIVE)
        hidden_for = _seconds("visibility_timeout_s", visibility_timeout_s, MAX_VISIBILITY_TIMEOUT_S)
        dialect = self._db.dialect
        # One statement, atomic by itself (no BEGIN/COMMIT round trips), the database's clock read inside
        # the write: claims are ordered like it, on every node. PostgreSQL: competing receivers skip each
        # other's locked rows instead of sharing them.
        rows = self._db.db.execute(
            f"UPDATE queue_messages SET visible_at = {dialect.now} + ?, receive_count = receive_count + 1 "
            "WHERE queue = ? AND id IN ("
            f"  SELECT id FROM queue_messages WHERE queue = ? AND visible_at <= {dialect.now}"
            f"  ORDER BY visible_at, id LIMIT ?{dialect.skip_locked}"
            f") RETURNING {_COLUMNS}",
            [hidden_for, queue, queue, max_messages],
        ).fetchall()
        self._changed(len(rows))
        return sorted((_message(row) for row in rows), key=lambda m: m.id)

    @translate_database_errors
    def ack(self, queue: str, message_id: str) -> bool:
        require_resource_name("queue", queue)
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM queue_messages WHERE queue = ? AND id = ?", [queue, message_id])
            return bool(cursor.rowcount > 0)

    @translate_database_errors
    def ack_many(self, queue: str, deliveries: Sequence[QueueMessage]) -> list[str]:
        """Delete several processed deliveries in one transaction; the ids deleted. The receive count is the
        receipt: a late ack from a delivery whose timeout passed cannot delete the message's redelivery."""
        require_resource_name("queue", queue)
        deleted: set[str] = set()
        for start in range(0, len(deliveries), ACK_CHUNK):  # one statement per chunk, each atomic
            chunk = deliveries[start : start + ACK_CHUNK]
            # `id IN (...)` is what lets SQLite find the rows by the primary key: the row values alone made it
            # scan every message of the queue (O(depth) per ack); the receipts then filter those rows.
            ids = ", ".join("?" for _ in chunk)
            receipts = ", ".join("(?, ?)" for _ in chunk)
            rows = self._db.db.execute(
                f"DELETE FROM queue_messages WHERE queue = ? AND id IN ({ids})"
                f" AND (id, receive_count) IN (VALUES {receipts}) RETURNING id",
                [queue, *(m.id for m in chunk), *(v for m in chunk for v in (m.id, m.receive_count))],
            ).fetchall()
            deleted.update(row[0] for row in rows)
        self._changed(len(deleted))
        return [m.id for m in deliveries if m.id in deleted]

    @translate_database_errors
    def move(self, queue: str, messages: Sequence[QueueMessage], to_queue: str) -> list[str]:
        """Dead-letter: each message still in `queue` is deleted there and its body (and chain depth) published
        to `to_queue`, all in one transaction. Returns the ids moved (the others were acked by another consumer)."""
        require_resource_name("queue", queue)
        with self._db.transaction():
            moved = self.ack_many(queue, messages)
            by_id = {m.id: m for m in messages}
            for message_id in moved:  # its depth kept, even past a limit lowered since: nothing is lost
                self._insert(to_queue, by_id[message_id].body, by_id[message_id].chain_depth)
        return moved

    @translate_database_errors
    def release(self, queue: str, message_id: str, delay_s: float = 0.0) -> bool:
        require_resource_name("queue", queue)
        delay = _seconds("delay_s", delay_s, MAX_VISIBILITY_TIMEOUT_S)
        with self._db.transaction() as db:
            cursor = db.execute(
                f"UPDATE queue_messages SET visible_at = {self._db.dialect.now} + ? WHERE queue = ? AND id = ?",
                [delay, queue, message_id],
            )
            return bool(cursor.rowcount > 0)

    @translate_database_errors
    def depth(self, queue: str) -> int:
        require_resource_name("queue", queue)
        row = self._db.db.execute("SELECT count(*) FROM queue_messages WHERE queue = ?", [queue]).fetchone()
        return int(row[0])

    @translate_database_errors
    def queues(self) -> list[str]:
        return [
            row[0] for row in self._db.db.execute("SELECT DISTINCT queue FROM queue_messages ORDER BY queue")
        ]

    @translate_database_errors
    def queue_stats(self) -> list[QueueStats]:
        rows = self._db.db.execute(
            f"SELECT queue, count(*), sum(CASE WHEN visible_at > {self._db.dialect.now} THEN 1 ELSE 0 END) "
            "FROM queue_messages GROUP BY queue ORDER BY queue"
        )
        return [QueueStats(queue=row[0], depth=int(row[1]), in_flight=int(row[2])) for row in rows]

    @translate_database_errors
    def peek(self, queue: str, limit: int = 10) -> list[QueueMessage]:
        require_resource_name("queue", queue)
        int_in_range("limit", limit, 1, MAX_RECEIVE)
        rows = self._db.db.execute(
            f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? ORDER BY id LIMIT ?", [queue, limit]
        )
        return [_message(row) for row in rows]

    @translate_database_errors
    def purge(self, queue: str) -> int:
        require_resource_name("queue", queue)
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM queue_messages WHERE queue = ?", [queue]).rowcount)


def _seconds(kind: str, value: object, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise InvalidArgument(f"{kind} must be a number of seconds in 0..{high:g}, got {value!r}")
    return float(value)
