"""Host capabilities: one module each, same shape (see `base`).

`CAPABILITIES` is the one list of them: the manifest's `[grants]` keys, the resource kinds of
shares and `--may-grant` patterns, the deploy-time grant authorization and the allowed sets of a
function version all derive from it.
"""

from .base import CallState, Capability, CoreResults, ErrorKind, HostCallError, LogBuffer, VersionGrants
from .body import BodyCapability
from .http import HttpCapability
from .kv import KvCapability
from .log import LogCapability
from .queue import QueueCapability
from .secrets import SecretsCapability

CAPABILITIES: tuple[type[Capability], ...] = (
    KvCapability,
    SecretsCapability,
    QueueCapability,
    LogCapability,
    HttpCapability,
    BodyCapability,
)
GRANTED = tuple(c for c in CAPABILITIES if c.grant_key)
"""The capabilities a manifest grants resources of, in `[grants]` order."""
RESOURCE_KINDS = tuple(c.kind for c in GRANTED)
"""The kinds of resource a manifest grants or a namespace shares (also the `--may-grant` prefixes)."""


def by_grant_key(key: str) -> type[Capability] | None:
    return next((c for c in GRANTED if c.grant_key == key), None)


def by_kind(kind: str) -> type[Capability] | None:
    return next((c for c in GRANTED if c.kind == kind), None)


__all__ = [
    "CAPABILITIES",
    "GRANTED",
    "RESOURCE_KINDS",
    "BodyCapability",
    "CallState",
    "Capability",
    "CoreResults",
    "ErrorKind",
    "HostCallError",
    "HttpCapability",
    "KvCapability",
    "LogBuffer",
    "LogCapability",
    "QueueCapability",
    "SecretsCapability",
    "VersionGrants",
    "by_grant_key",
    "by_kind",
]
