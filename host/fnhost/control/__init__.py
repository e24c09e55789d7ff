"""The control plane: bundles (validation, packing), signing (Ed25519), and who may do what: API keys and
their scopes, shares, audit policy. Their tables are in `fnhost.stores`."""

from .audit import AuditEntry, AuditLog, VerifyResult
from .auth import SCOPES, ApiKeyInfo, ApiKeys, Principal
from .bundles import Bundle, BundleLimits, bundle_digest, open_bundle, pack_bundle
from .signing import generate_signing_key, parse_public_key, save_signing_key, sign_bundle, verify_bundle

__all__ = [
    "SCOPES",
    "ApiKeyInfo",
    "ApiKeys",
    "AuditEntry",
    "AuditLog",
    "Bundle",
    "BundleLimits",
    "Principal",
    "VerifyResult",
    "bundle_digest",
    "generate_signing_key",
    "open_bundle",
    "pack_bundle",
    "parse_public_key",
    "save_signing_key",
    "sign_bundle",
    "verify_bundle",
]
