"""`App`: registers the handlers and turns them into the `WitWorld` class componentize-py exports."""

from __future__ import annotations

import inspect
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

from ._body import put_output, take_input
from ._context import Context
from ._events import BlobChange, Event, EventResult, Invoke, Output, QueueBatch, QueueMessage, Schedule, encode_result
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
        self._http = _checked(fn, "app.http", "(request, ctx)")
        return fn

    def event(self, fn: E) -> E:
        """Register the event handler: `fn(event, ctx)` with an `Invoke`, `QueueBatch`, `Schedule` or `BlobChange`;
        it returns an `EventResult`, or the output alone (bytes, str, dict/list as JSON, None)."""
        self._event = _checked(fn, "app.event", "(event, ctx)")
        return fn

    def handle_http(self, ctx: types.Context, request: types.HttpRequest) -> types.HttpResponse:
        handler = self._http
        if handler is None:
            raise Err("this function has no HTTP handler (register one with @app.http)")
        try:
            req = Request(request.method, request.path_with_query, request.headers, take_input(request.body))
            resp = to_response(handler(req, _context(ctx)))
            body = put_output(resp.body)
        except Exception as e:
            raise _failure(e) from None
        return types.HttpResponse(resp.status, resp.headers.items(), body)

    def handle_event(self, ctx: types.Context, event: types.Event) -> types.EventResult:
        handler = self._event
        if handler is None:
            raise Err("this function has no event handler (register one with @app.event)")
        ev = _event(event)
        try:
            output, failed = encode_result(handler(ev, _context(ctx)))
            output = put_output(output)
        except Exception as e:
            raise _failure(e) from None
        return types.EventResult(output, failed)

    def world(self) -> type[wit_world.WitWorld]:
        """The class to bind to the name `WitWorld` in the app module."""
        app = self

        class WitWorld(wit_world.WitWorld):
            def handle_http(self, ctx: types.Context, request: types.HttpRequest) -> types.HttpResponse:
                return app.handle_http(ctx, request)

            def handle_event(self, ctx: types.Context, event: types.Event) -> types.EventResult:
                return app.handle_event(ctx, event)

        return WitWorld


def _checked(fn: Callable[..., object], where: str, params: str) -> Callable[..., object]:
    # app.py's top level runs at build time (componentize-py snapshots it), so a handler that cannot
    # be called as (request, ctx) fails the build instead of the first request.
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError as e:
        raise TypeError(f"{where}: {getattr(fn, '__name__', fn)!s} cannot be called as {params}: {e}") from None
    except ValueError:  # no signature to check (a builtin)
        pass
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"{where}: {fn.__name__} is async; handlers must be synchronous {params}")
    return fn


_SDK_DIR = str(Path(__file__).resolve().parent)


def _failure(e: Exception) -> Err[str]:
    # An Exception escaping a handler is the function's failure: the WIT `err` string, outcome
    # GuestError (the host reports a "MemoryError: ..." as MemoryLimit), naming the innermost line of
    # the guest's own code; the whole traceback goes to stderr, recorded with the invocation.
    # Callers catch only Exception, so BaseException (SystemExit, KeyboardInterrupt) still traps.
    where = ""
    if not isinstance(e, MemoryError):  # a traceback needs memory that the guest may not have left
        traceback.print_exception(e, file=sys.stderr)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(_SDK_DIR)]
        # componentize-py names a file by the index of its -p directory: "/0/app.py" is the guest's app.py
        where = f" (at {re.sub(r'^/[0-9]+/', '', frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return Err(f"{type(e).__name__}: {e}{where}")


def _context(ctx: types.Context) -> Context:
    return Context(
        ctx.invocation_id, ctx.function_name, ctx.function_version, ctx.deadline_unix_ms, ctx.memory_limit_mb
    )


def _event(event: types.Event) -> Event:
    if isinstance(event, types.Event_Invoke):
        return Invoke(take_input(event.value))
    if isinstance(event, types.Event_QueueBatch):
        return QueueBatch([QueueMessage(m.id, m.queue, bytes(m.body), m.receive_count) for m in event.value])
    if isinstance(event, types.Event_Schedule):
        return Schedule(event.value.schedule, event.value.scheduled_unix_ms)
    if isinstance(event, getattr(types, "Event_Blob", ())):  # since 0.2.0
        b = event.value
        return BlobChange(b.bucket, b.key, b.event, b.size, b.sha256, b.receive_count)
    raise Err(f"unknown event kind {type(event).__name__}: this SDK is older than the host")
