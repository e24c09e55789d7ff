"""fnhost: a serverless function host for WebAssembly components and core modules.

    from fnhost import Host
    host = Host(".fnhost")
    host.deploy("hello", wasm, manifest)
    result = host.invoke("hello", b'{"name": "you"}')

    from fnhost import Client            # the HTTP API of a running server
    Client("http://127.0.0.1:8080", token).invoke("hello", b"{}")
"""

from .client import ApiError, Client
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

__all__ = [
    "ApiError",
    "BuildError",
    "BundleError",
    "BundleTooLarge",
    "Client",
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
    "SignatureError",
    "Unauthorized",
    "Version",
]
