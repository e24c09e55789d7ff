"""fnhost: a serverless function host for WebAssembly components and core modules.

    from fnhost import Host
    host = Host(".fnhost")
    host.deploy("hello", wasm, manifest)
    result = host.invoke("hello", b'{"name": "you"}')
"""

from .errors import (
    BuildError,
    BundleError,
    BundleTooLarge,
    Conflict,
    FnhostError,
    Forbidden,
    InvalidWasm,
    ManifestError,
    NotFound,
    SignatureError,
    Unauthorized,
)
from .host import Host, Version
from .manifest import Grants, Limits, Manifest
from .runtime.engine import EngineSettings
from .runtime.outcomes import HttpResponse, InvocationResult, Outcome
from .stores.usage import Rollup, UsageRetention

__all__ = [
    "BuildError",
    "BundleError",
    "BundleTooLarge",
    "Conflict",
    "EngineSettings",
    "FnhostError",
    "Forbidden",
    "Grants",
    "Host",
    "HttpResponse",
    "InvalidWasm",
    "InvocationResult",
    "Limits",
    "Manifest",
    "ManifestError",
    "NotFound",
    "Outcome",
    "Rollup",
    "SignatureError",
    "Unauthorized",
    "UsageRetention",
    "Version",
]
