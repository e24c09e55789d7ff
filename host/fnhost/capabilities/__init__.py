"""Host capabilities: one module each, same shape (see `base`)."""

from .base import CallState, Capability, ErrorKind, HostCallError, LogBuffer, VersionGrants
from .kv import KvCapability
from .log import LogCapability
from .queue import QueueCapability
from .secrets import SecretsCapability

__all__ = [
    "CallState",
    "Capability",
    "ErrorKind",
    "HostCallError",
    "KvCapability",
    "LogBuffer",
    "LogCapability",
    "QueueCapability",
    "SecretsCapability",
    "VersionGrants",
]
