"""The one JSON error shape of the API, and the handlers that produce it for every failure.

Every error response is ``{"error": {"code": ..., "message": ..., "request_id": ...}}`` (plus
``invocation_id`` when an invocation ran). `code` is `FnhostError.code`, an invocation outcome
(`timeout`, `guest_trap`...) or, for routing failures, `not_found` / `method_not_allowed`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..errors import FnhostError
from ..errors import InvalidRequest as InvalidRequest  # the handlers' import of it

log = logging.getLogger("fnhost.api")


class PayloadTooLarge(FnhostError):
    """A request body over the server's limit (`--max-body-bytes`)."""

    code = "payload_too_large"
    http_status = 413


class BodyTimeout(FnhostError):
    """A request body that did not arrive within the server's body timeout (`--body-timeout`)."""

    code = "request_timeout"
    http_status = 408


class ServerBusy(FnhostError):
    """The server is at a limit of its own: request-body bytes in flight (`--max-body-bytes-in-flight`),
    open log followers."""

    code = "server_busy"
    http_status = 503


class Throttled(FnhostError):
    """Too many invocations in flight (server-wide or for one function); retry after a moment."""

    code = "throttled"
    http_status = 429


HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    429: "throttled",
    503: "unavailable",
    507: "insufficient_storage",
}

RETRY_AFTER_SECONDS = 1


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    invocation_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one error shape. `X-Request-Id` is set by the request-id middleware, not here."""
    body: dict[str, str] = {"code": code, "message": message}
    if request_id:
        body["request_id"] = request_id
    if invocation_id:
        body["invocation_id"] = invocation_id
    extra = dict(headers or {})
    if status in (429, 503):
        extra.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return JSONResponse({"error": body}, status_code=status, headers=extra)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def fnhost_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FnhostError)
    return error_response(exc.http_status, exc.code, str(exc), request_id=request_id_of(request))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}; see GET /v1/openapi.json"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(
        exc.status_code, code, message, request_id=request_id_of(request), headers=exc.headers
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    rid = request_id_of(request)
    headers = {"X-Request-Id": rid} if rid else None
    return error_response(
        500,
        "internal_error",
        f"internal server error ({type(exc).__name__}); the server log has the traceback",
        request_id=rid,
        headers=headers,
    )


async def client_disconnect(request: Request, exc: Exception) -> Response:
    """The caller went away mid-body (or its connection timed out): nobody to answer, nothing to log."""
    return error_response(400, "client_disconnected", "the client disconnected", request_id=request_id_of(request))


EXCEPTION_HANDLERS = {
    ClientDisconnect: client_disconnect,
    FnhostError: fnhost_error,
    HTTPException: http_error,
    Exception: internal_error,
}
