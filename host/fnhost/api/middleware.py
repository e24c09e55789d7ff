"""ASGI middleware: a request id on every request and response, a streaming body limit, and the
answering process's id (when several serve one port)."""

from __future__ import annotations

import os
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..names import REQUEST_ID
from .errors import PayloadTooLarge, error_response

REQUEST_ID_HEADER = "x-request-id"
PROCESS_HEADER = "x-fnhost-process"


class RequestIdMiddleware:
    """Takes `X-Request-Id` from the client (if well-formed) or makes one; echoes it on the response.

    The id is in `request.state.request_id`, so handlers log and audit under the same id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = given if REQUEST_ID.matches(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class ProcessIdMiddleware:
    """`X-Fnhost-Process: <pid>` on every response: which of `fnhost serve --processes N` answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[PROCESS_HEADER] = self.pid
            await send(message)

        await self.app(scope, receive, send_with_pid)


class BodyLimitMiddleware:
    """Refuses a body over `max_bytes` while it streams in, never buffering more than the limit.

    A declared `Content-Length` over the limit is refused before reading anything; a chunked body
    is counted chunk by chunk and refused at the first byte over the limit (`PayloadTooLarge`,
    turned into the JSON 413 by the exception handlers).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            rid = scope.get("state", {}).get("request_id")
            await error_response(413, PayloadTooLarge.code, self._message(int(declared)), request_id=rid)(
                scope, receive, send
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self._message(received, at_least=True))
            return message

        await self.app(scope, limited_receive, send)

    def _message(self, size: int, *, at_least: bool = False) -> str:
        size_text = f"at least {size}" if at_least else str(size)
        return (
            f"request body is {size_text} bytes, over this server's limit of {self.max_bytes} bytes; "
            "send a smaller body or raise --max-body-bytes"
        )
