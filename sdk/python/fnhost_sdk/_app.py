"""`App`: registers the handlers and turns them into the `WitWorld` class componentize-py exports."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

from ._context import Context
from ._events import Event, EventResult, Invoke, Output, QueueBatch, QueueMessage, Schedule, encode_result
from ._http import Request, to_response

HttpHandler = Callable[[Request, Context], object]
EventHandler = Callable[[Event, Context], EventResult | Output]
H = TypeVar("H", bound=HttpHandler)
E = TypeVar("E", bound=EventHandler)


class App:
    """One function's handlers. In the guest's `app.py`::

    app = App()

    @app.http
    def handle(req: Request, ctx: Context) -> Response: ...

    WitWorld = app.world()   # componentize-py looks for this name
    """

    def __init__(self) -> None:
        self._http: HttpHandler | None = None
        self._event: EventHandler | None = None

    def http(self, fn: H) -> H:
        """Register the HTTP handler: `fn(request, ctx)` returns a `Response` (or dict/list/str/bytes)."""
        self._http = fn
        return fn

    def event(self, fn: E) -> E:
        """Register the event handler: `fn(event, ctx)` with an `Invoke`, `QueueBatch` or `Schedule`;
        it returns an `EventResult`, or the output alone (bytes, str, dict/list as JSON, None)."""
        self._event = fn
        return fn

    def handle_http(self, ctx: types.Context, request: types.HttpRequest) -> types.HttpResponse:
        handler = self._http
        if handler is None:
            raise Err("this function has no HTTP handler (register one with @app.http)")
        req = Request(request.method, request.path_with_query, request.headers, request.body)
        try:
            resp = to_response(handler(req, _context(ctx)))
        except Exception as e:
            raise _failure(e) from None
        return types.HttpResponse(resp.status, resp.headers.items(), resp.body)

    def handle_event(self, ctx: types.Context, event: types.Event) -> types.EventResult:
        handler = self._event
        if handler is None:
            raise Err("this function has no event handler (register one with @app.event)")
        ev = _event(event)
        try:
            result = encode_result(handler(ev, _context(ctx)))
        except Exception as e:
            raise _failure(e) from None
        return types.EventResult(*result)

    def world(self) -> type[wit_world.WitWorld]:
        """The class to bind to the name `WitWorld` in the app module."""
        app = self

        class WitWorld(wit_world.WitWorld):
            def handle_http(self, ctx: types.Context, request: types.HttpRequest) -> types.HttpResponse:
                return app.handle_http(ctx, request)

            def handle_event(self, ctx: types.Context, event: types.Event) -> types.EventResult:
                return app.handle_event(ctx, event)

        return WitWorld


def _failure(e: Exception) -> Err[str]:
    # An Exception escaping a handler is the function's failure: the WIT `err` string, outcome
    # GuestError (the host reports a "MemoryError: ..." as MemoryLimit). Callers catch only Exception,
    # so BaseException (SystemExit, KeyboardInterrupt) still ends the instance with a trap.
    return Err(f"{type(e).__name__}: {e}")


def _context(ctx: types.Context) -> Context:
    return Context(
        ctx.invocation_id, ctx.function_name, ctx.function_version, ctx.deadline_unix_ms, ctx.memory_limit_mb
    )


def _event(event: types.Event) -> Event:
    if isinstance(event, types.Event_Invoke):
        return Invoke(bytes(event.value))
    if isinstance(event, types.Event_QueueBatch):
        return QueueBatch([QueueMessage(m.id, m.queue, bytes(m.body), m.receive_count) for m in event.value])
    if isinstance(event, types.Event_Schedule):
        return Schedule(event.value.schedule, event.value.scheduled_unix_ms)
    raise Err(f"unknown event kind {type(event).__name__}: this SDK is older than the host")
