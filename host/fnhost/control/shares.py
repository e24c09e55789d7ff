"""Share policy: what may cross a namespace (the records are `fnhost.stores.shares`).

Only the resources that capabilities grant by name (kv buckets, secrets, queues) can be shared, and
only with another namespace: the owning one has them already. Who may share is the API's check (an
admin of the owning namespace).
"""

from __future__ import annotations

from ..capabilities import RESOURCE_KINDS as KINDS
from ..stores.errors import InvalidArgument
from ..stores.shares import Share, ShareStore

__all__ = ["Share", "Shares"]


class Shares(ShareStore):
    """The share records, refusing shares that cannot mean anything."""

    def create(self, owner: str, kind: str, name: str, grantee: str, created_by: str | None = None) -> Share:
        if kind not in KINDS:
            raise InvalidArgument(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if grantee == owner:
            raise InvalidArgument(f"namespace '{owner}' already owns {kind} '{name}'; share it with another namespace")
        return super().create(owner, kind, name, grantee, created_by)
