"""Outbound HTTP to the origins granted in the manifest (`[grants] http = ["https://api.example.com"]`).

    from fnhost_sdk import http

    r = http.get("https://api.example.com/v1/items?limit=10", headers={"accept": "application/json"})
    if r.status == 200:
        items = r.json()

Errors are exceptions: `Denied` (origin not granted, or an address the host refuses), `Timeout`,
`TooLarge`, `LimitExceeded`, `InvalidArgument`, `Unavailable` (DNS, connect, TLS...). An HTTP
error status (404, 500) is a `Response`, not an exception. Python's own `urllib` and sockets do
not work inside a function: this module is the way out.
"""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from typing import Any

from componentize_py_types import Err

from ._body import as_text, from_text
from ._errors import Denied, HostError, InvalidArgument, LimitExceeded, Timeout, TooLarge, Unavailable
from ._http import Headers

_BY_CASE = {
    "Denied": Denied,
    "Timeout": Timeout,
    "TooLarge": TooLarge,
    "LimitExceeded": LimitExceeded,
    "Invalid": InvalidArgument,
    "Unavailable": Unavailable,
}
"""`HttpError_<case>` binding classes → exceptions (looked up by name: the binding is imported only
when a request is made, so the SDK still builds against contract 0.1.0, which has no outbound-http)."""


def _binding() -> Any:
    try:
        from wit_world.imports import outbound_http
    except ImportError:
        raise RuntimeError(
            "fnhost_sdk.http needs contract 0.2.0 (outbound-http); this function was built against an older WIT"
        ) from None
    return outbound_http


class Response:
    """The final response (after redirects): `status`, `headers` (case-insensitive), `body` (bytes)."""

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status}, {len(self.body)} bytes>"


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | str = b"",
    json: Any = None,
    timeout_ms: int | None = None,
) -> Response:
    """Send `method url`; `json` sends that value as the body with content-type application/json.
    `timeout_ms` bounds the whole exchange (never past the invocation's deadline)."""
    pairs = list(headers.items() if isinstance(headers, Mapping) else (headers or ()))
    data = body.encode() if isinstance(body, str) else bytes(body)
    if json is not None:
        data = _json.dumps(json).encode()
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("content-type", "application/json"))
    # Both bodies cross as text (`request-text`): a string crosses in bulk, a list<u8> one value per
    # byte (~1 s per MiB); the host picks the response's encoding.
    binding = _binding()  # first: a guest built against 0.1.0 gets its clear error
    text, encoding = as_text(data)
    try:
        r = binding.request_text(method, url, pairs, text, encoding, timeout_ms)
    except Err as e:
        cls = _BY_CASE.get(type(e.value).__name__.removeprefix("HttpError_"))
        if cls is None:
            raise
        raise cls(getattr(e.value, "value", "")) from None
    return Response(r.status, Headers(r.headers), from_text(r.body, r.body_encoding))


def get(url: str, **kwargs: Any) -> Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    return request("PUT", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    return request("DELETE", url, **kwargs)
