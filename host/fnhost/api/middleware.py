"""ASGI middleware: a request id on every request and response, a streaming body limit, and the
answering process's id (when several serve one port)."""

from __future__ import annotations

import os
import time

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..names import REQUEST_ID
from .errors import BodyTimeout, PayloadTooLarge, ServerBusy, error_response

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
        request_id = given if REQUEST_ID.matches(given) else os.urandom(16).hex()  # 32 hex digits, as uuid4().hex
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


class BodyBudget:
    """Request-body bytes the whole server holds at once, at most `max_bytes` (a body is counted
    from its first byte, or from its declared `Content-Length`, until its request ends).

    Only touched on the event loop, so plain integers are exact.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_flight = 0

    def reserve(self, n: int) -> bool:
        if self.in_flight + n > self.max_bytes:
            return False
        self.in_flight += n
        return True

    def release(self, n: int) -> None:
        self.in_flight -= n

    def busy_message(self) -> str:
        return (
            f"this server already holds {self.in_flight} bytes of request bodies, its limit "
            f"(--max-body-bytes-in-flight {self.max_bytes}); retry after a moment"
        )


class BodyLimitMiddleware:
    """Bounds a request body while it streams in: its size (`max_bytes`, 413), the time it may take
    to arrive (`timeout_s` from the start of the request, 408) and its share of the server-wide
    `budget` (503 with Retry-After). Never buffers more than the limit.

    A declared `Content-Length` over the limit is refused before the request is handled, one over
    what the budget has left when the handler starts reading; a chunked body is counted chunk by
    chunk. The errors raised while reading (`PayloadTooLarge`, `BodyTimeout`, `ServerBusy`) become
    the JSON error by the exception handlers.
    Bodies are only read by handlers after they authenticate the caller, so a caller without a
    key costs no body bytes.

    A `streamed` route (blob uploads: its handler writes each chunk on as it comes and holds none)
    takes no share of the budget, and its body's deadline moves with its progress: `timeout_s` plus
    one second per `min_rate` bytes received, so a large upload at a fair rate completes and a slow
    or stalled one is cut off.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        budget: BodyBudget,
        timeout_s: float,
        streamed: bool = False,
        min_rate: int = 1 << 20,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.budget = budget
        self.timeout_s = timeout_s
        self.streamed = streamed
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        too_large = declared is not None and (
            not declared.isdigit() or len(declared) > 18 or int(declared) > self.max_bytes
        )
        expected = int(declared) if declared is not None and not too_large else 0
        if too_large:
            rid = scope.get("state", {}).get("request_id")
            await error_response(413, PayloadTooLarge.code, self._message(declared or "?"), request_id=rid)(
                scope, receive, send
            )
            return
        started = time.monotonic()
        deadline = started + self.timeout_s
        received = reserved = 0
        if self.streamed:
            expected = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, reserved, body_done, deadline
            if body_done:
                return await receive()
            if reserved < expected:  # the first read: the declared size is counted before any byte
                if not self.budget.reserve(expected):
                    raise ServerBusy(self.budget.busy_message())
                reserved = expected
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    body_done = not message.get("more_body", False)
                    if received > self.max_bytes:
                        raise PayloadTooLarge(self._message(received, at_least=True))
                    if self.streamed:
                        deadline = started + self.timeout_s + received / self.min_rate
                    elif received > reserved:  # chunked, or more than declared (h11 refuses that)
                        if not self.budget.reserve(received - reserved):
                            raise ServerBusy(self.budget.busy_message())
                        reserved = received
                return message
            rate = f" plus 1 s per {self.min_rate} bytes" if self.streamed else ""
            raise BodyTimeout(
                f"the request body did not arrive within {self.timeout_s:g} s{rate} ({received} bytes came); "
                "send it faster, or raise --body-timeout"
            )

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.budget.release(reserved)

    def _message(self, size: int | str, *, at_least: bool = False) -> str:
        size_text = f"at least {size}" if at_least else str(size)
        return (
            f"request body is {size_text} bytes, over this server's limit of {self.max_bytes} bytes; "
            "send a smaller body or raise --max-body-bytes"
        )
