"""fnhost guest SDK for Python, over the componentize-py bindings of `sdk/wit/fnhost.wit`.

    from fnhost_sdk import App, Request, Response, http, kv

    app = App()

    @app.http
    def handle(req: Request, ctx) -> Response:
        return Response.json({"hello": req.query.get("name", "world")})

    WitWorld = app.world()

Build with `python -m fnhost build DIR` (or `fnhost build DIR`).
"""

from . import _sleep, _sockets, _stdio, http, kv, log, queue, secrets
from ._app import App
from ._context import Context
from ._errors import Denied, HostError, InvalidArgument, LimitExceeded, NotFound, Timeout, TooLarge, Unavailable
from ._events import Event, EventResult, Invoke, QueueBatch, QueueMessage, Schedule
from ._http import Headers, Request, Response

_sleep.install()
_sockets.install()
_stdio.install()

__all__ = [
    "App",
    "Context",
    "Denied",
    "Event",
    "EventResult",
    "Headers",
    "HostError",
    "InvalidArgument",
    "Invoke",
    "LimitExceeded",
    "NotFound",
    "QueueBatch",
    "QueueMessage",
    "Request",
    "Response",
    "Schedule",
    "Timeout",
    "TooLarge",
    "Unavailable",
    "http",
    "kv",
    "log",
    "queue",
    "secrets",
]
