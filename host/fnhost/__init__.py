"""fnhost: a serverless function host for WebAssembly components and core modules.

    from fnhost import Host
    host = Host(".fnhost")
    host.deploy("hello", wasm, manifest)
    result = host.invoke("hello", b'{"name": "you"}')

    from fnhost import Server, ServerConfig, Client
    Server(ServerConfig(data_dir=".fnhost")).run()                  # the HTTP API, triggers, keys, audit
    Client("http://127.0.0.1:8080", token).invoke("hello", b"{}")   # that API from another program
"""

from .client import ApiError, Client
from .egress import EgressConfig, EgressMode
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
from .server import Server, ServerConfig

__all__ = [
    "ApiError",
    "BuildError",
    "BundleError",
    "BundleTooLarge",
    "Client",
    "Conflict",
    "EgressConfig",
    "EgressMode",
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
    "Server",
    "ServerConfig",
    "SignatureError",
    "Unauthorized",
    "Version",
]
