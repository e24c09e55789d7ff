"""Every error fnhost raises to a caller. One definition, imported everywhere.

Each message names the cause and, where there is one, the fix.
"""

from __future__ import annotations


class FnhostError(Exception):
    """Base class of all fnhost errors. `code` is the stable, machine-readable kind."""

    code = "error"
    http_status = 500


class ManifestError(FnhostError):
    """A manifest field is missing, of the wrong type or out of range."""

    code = "invalid_manifest"
    http_status = 400


class BundleError(FnhostError):
    """A bundle (zip) is malformed, hostile or too large."""

    code = "invalid_bundle"
    http_status = 400


class BundleTooLarge(BundleError):
    code = "bundle_too_large"
    http_status = 413


class SignatureError(BundleError):
    """A bundle is unsigned, tampered with, or signed by an untrusted key."""

    code = "invalid_signature"
    http_status = 400


class InvalidWasm(FnhostError):
    """The wasm binary is neither a valid component nor a valid core module, or misses exports."""

    code = "invalid_wasm"
    http_status = 400


class InvalidRequest(FnhostError):
    """A malformed request: bad JSON, a missing field, a path that disagrees with the body."""

    code = "invalid_request"
    http_status = 400


class NotFound(FnhostError):
    code = "not_found"
    http_status = 404


class Conflict(FnhostError):
    code = "conflict"
    http_status = 409


class Unauthorized(FnhostError):
    code = "unauthorized"
    http_status = 401


class Forbidden(FnhostError):
    code = "forbidden"
    http_status = 403


class ReadOnly(FnhostError):
    code = "read_only"
    http_status = 405


class InsufficientStorage(FnhostError):
    """The disk holding the data dir (or the compile cache) is full; nothing half-written was kept."""

    code = "insufficient_storage"
    http_status = 507


class BuildError(FnhostError):
    """A guest could not be built (missing toolchain, compile error)."""

    code = "build_failed"
    http_status = 400


class InvalidName(FnhostError):
    """A namespace, function or resource name that breaks its rule (the message states the rule)."""

    code = "invalid_name"
    http_status = 400


class LoopDetected(FnhostError):
    """A chain of functions triggering each other passed the host's limit (`fnhost.chains`): the request,
    message or blob event that would continue it is refused."""

    code = "loop_detected"
    http_status = 508
