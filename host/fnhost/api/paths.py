"""Where namespaced resources live in the URL space (docs/api.md, "Namespaces").

`/v1/functions/...`, `/v1/secrets/...` and the other namespaced routes address the `default`
namespace; the same route under `/v1/namespaces/{namespace}` addresses that namespace. Function
URLs are `/fn/{name}/...` in `default` and `/ns/{namespace}/fn/{name}/...` elsewhere; `{name}` may
carry a qualifier, `hello@prod` or `hello@3` (api/invoke.py). The routes
(api/app.py) and the OpenAPI document (api/openapi.py) are both derived from this.
"""

from __future__ import annotations

NAMESPACE_PREFIX = "/v1/namespaces/{namespace}"
NAMESPACED_ROOTS = (
    "/v1/functions",
    "/v1/queues",
    "/v1/blobs",
    "/v1/triggers",
    "/v1/schedules",
    "/v1/secrets",
    "/v1/shares",
    "/v1/usage",
    "/v1/releases",
)
FUNCTION_URL = "/fn/{name}"
NAMESPACED_FUNCTION_URL = "/ns/{namespace}/fn/{name}"


def is_namespaced(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in NAMESPACED_ROOTS)


def in_namespace(path: str) -> str:
    """The route of namespaced `path` in a namespace: `/v1/functions` -> `/v1/namespaces/{namespace}/functions`."""
    return NAMESPACE_PREFIX + path.removeprefix("/v1")
