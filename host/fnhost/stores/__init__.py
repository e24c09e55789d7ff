"""Durable state of one host or cluster: every table fnhost has, each behind one store.

Each store takes the shared database, applies its own migrations on construction and hides SQL
behind a small typed API. One implementation per store serves both backends (`database`: the
embedded SQLite file, or a shared PostgreSQL through `PostgresDatabase`); what differs between them
is one `Dialect`. The stores: kv, queues, secrets, the function registry, wasm binaries, invocation
records, async invocations, schedule state, queue mappings, concurrency leases, API keys, the audit
chain and shares (tested on both in tests/test_stores.py, tests/test_trigger_stores.py and
tests/test_control.py). Times are REAL epoch seconds from the database's clock. Who may do what
with them is `fnhost.control`. The capability-facing stores (`KVStore`, `QueueStore`,
`SecretStore`) are `typing.Protocol`s.
"""

from ._common import new_sortable_id
from .database import Database, PostgresDatabase, open_database
from .errors import (
    InvalidArgument,
    MasterKeyError,
    SecretUndecryptable,
    StoreError,
    StoreUnavailable,
    TooLarge,
)
from .invocations import InvocationRecord, InvocationStore, Page, bounded_text
from .kv import KVStore, SQLiteKVStore
from .queues import QueueMessage, QueueStats, QueueStore, SQLiteQueueStore
from .registry import LIVE, AliasRecord, FunctionRecord, Registry, VersionRecord
from .secrets import MASTER_KEY_ENV, SecretStore, SQLiteSecretStore, load_master_key

__all__ = [
    "LIVE",
    "MASTER_KEY_ENV",
    "AliasRecord",
    "Database",
    "FunctionRecord",
    "InvalidArgument",
    "InvocationRecord",
    "InvocationStore",
    "KVStore",
    "MasterKeyError",
    "Page",
    "PostgresDatabase",
    "QueueMessage",
    "QueueStats",
    "QueueStore",
    "Registry",
    "SQLiteKVStore",
    "SQLiteQueueStore",
    "SQLiteSecretStore",
    "SecretStore",
    "SecretUndecryptable",
    "StoreError",
    "StoreUnavailable",
    "TooLarge",
    "VersionRecord",
    "bounded_text",
    "load_master_key",
    "new_sortable_id",
    "open_database",
]
