"""Durable state of one host, in one SQLite file: key-value buckets, queues, secrets, the function
registry and invocation records.

Each store takes the shared `Database`, applies its own migrations on construction and hides SQL
behind a small typed API. The capability-facing stores (`KVStore`, `QueueStore`, `SecretStore`)
are `typing.Protocol`s, so another backend can stand in for the SQLite one.
"""

from ._common import new_sortable_id
from .database import Database
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
]
