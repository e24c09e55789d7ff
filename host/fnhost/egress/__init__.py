"""Outbound HTTP for functions: origins and grants (`origins`), the SSRF rules on resolved
addresses (`addresses`), pinned connections with deadlines (`transport`) and the client
(`client`). The `http` capability (`fnhost.capabilities.http`) is its only user."""

from .client import Egress, EgressConfig, EgressFailure, EgressMode, Exchange, Hop, Reply, exchanges_json
from .origins import OriginError, OriginGrant, Target, parse_grant, parse_url

__all__ = [
    "Egress",
    "EgressConfig",
    "EgressFailure",
    "EgressMode",
    "Exchange",
    "Hop",
    "OriginError",
    "OriginGrant",
    "Reply",
    "Target",
    "exchanges_json",
    "parse_grant",
    "parse_url",
]
