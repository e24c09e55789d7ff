"""Errors raised by the stores. Each maps onto one case of the WIT `error` variant.

They subclass `fnhost.errors.FnhostError`, so the API layer turns them into HTTP statuses and the
capabilities into guest errors without knowing which store raised them.
"""

from __future__ import annotations

from ..chains import too_deep
from ..errors import FnhostError, LoopDetected


class StoreError(FnhostError):
    """Base class of every error a store raises on purpose."""

    code = "store_error"
    http_status = 500


class InvalidArgument(StoreError):
    """A malformed argument: an empty key, a bad name, a limit out of range (WIT `invalid`)."""

    code = "invalid_argument"
    http_status = 400


class TooLarge(StoreError):
    """A key, value, message or name over its size limit (WIT `too-large`)."""

    code = "too_large"
    http_status = 413


class StoreUnavailable(StoreError):
    """The database failed (locked, disk full, I/O error); the call may be retried (WIT `unavailable`)."""

    code = "unavailable"
    http_status = 503


class ChainTooDeep(LoopDetected, StoreError):
    """A message or blob event that would be deeper in a chain of functions than the host allows
    (`fnhost.chains`); nothing was stored (WIT `limit-exceeded`). `what` names what was refused."""

    def __init__(self, what: str, depth: int, limit: int) -> None:
        super().__init__(too_deep(what, depth, limit))
        self.depth, self.limit = depth, limit


class SecretUndecryptable(StoreError):
    """A stored secret does not decrypt: another master key, or the row was tampered with."""

    code = "secret_undecryptable"
    http_status = 500


class CorruptBlob(StoreError):
    """A stored binary no longer matches its sha256 (damaged at rest): refused, never run."""

    code = "corrupt_blob"
    http_status = 500


class MasterKeyError(StoreError):
    """The master key from `FNHOST_MASTER_KEY` or `master.key` is malformed, or not the database's key."""

    code = "invalid_master_key"
    http_status = 500
