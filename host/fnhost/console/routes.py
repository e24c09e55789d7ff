"""The console's routes: one `Mount` at /console (and `/` sends browsers there), for `create_app` to add."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api.context import ApiContext
from ..api.errors import error_response, request_id_of
from ..api.middleware import BodyBudget, BodyLimitMiddleware
from ..stores.sessions import DEFAULT_TTL_S, SessionStore
from . import admin, events, functions, signin, usage
from .render import HERE, Console, Handler, page
from .security import SecurityHeaders

FORM_BYTES = 64 * 1024  # every form but the upload and the invoke payload
MULTIPART_OVERHEAD = 64 * 1024  # the upload's other fields and part headers


class DeclaredTooLarge:
    """A body whose declared `Content-Length` is over `max_bytes` gets an HTML 413 naming the limit
    before anything reads it (a streamed body over it is stopped by `BodyLimitMiddleware`)."""

    def __init__(self, app: ASGIApp, console: Console, max_bytes: int, what: str) -> None:
        self.app, self.console, self.max_bytes, self.what = app, console, max_bytes, what

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Request(scope).headers.get("content-length", "0")
        if scope["type"] == "http" and (not declared.isdigit() or int(declared) > self.max_bytes):
            message = (
                f"{self.what} is {declared[:20]} bytes, over this server's limit of {self.max_bytes} bytes; "
                "send a smaller one"
            )
            await self.console.error(Request(scope), None, 413, "payload_too_large", message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def console_routes(
    ctx: ApiContext, *, budget: BodyBudget, body_timeout_s: float, max_bundle_bytes: int, max_body_bytes: int,
    session_ttl_s: float = DEFAULT_TTL_S,
) -> list[BaseRoute]:  # fmt: skip
    """The console (docs/console.md) over `ctx`: its sessions live in the host's database."""
    console = Console(ctx, ctx.host.open_store(lambda db: SessionStore(db, session_ttl_s)))

    def route(
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        methods: list[str],
        limit: int = FORM_BYTES,
        what: str = "the form",
    ) -> Route:
        middleware = [
            Middleware(DeclaredTooLarge, console=console, max_bytes=limit, what=what),
            Middleware(BodyLimitMiddleware, max_bytes=limit, budget=budget, timeout_s=body_timeout_s),
        ]
        return Route(path, endpoint, methods=methods, middleware=middleware)

    def pages(path: str, handler: Handler, methods: list[str], **options: Any) -> Route:
        return route(path, page(console, handler), methods, **options)

    def bare(handler: Callable[[Console, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        return functools.partial(handler, console)

    routes = [
        Route("/", home, methods=["GET"]),
        route("/signin", bare(signin.signin_page), ["GET"]),
        route("/signin", bare(signin.signin), ["POST"]),
        pages("/signout", signin.signout, ["POST"]),
        pages("/functions", functions.functions_page, ["GET"]),
        pages("/functions/deploy", functions.deploy, ["POST"], limit=max_bundle_bytes + MULTIPART_OVERHEAD,
              what="the upload"),
        pages("/functions/{name}", functions.function_page, ["GET"]),
        pages("/functions/{name}/aliases", functions.point_alias, ["POST"]),
        pages("/functions/{name}/aliases/{alias}/remove", functions.remove_alias, ["POST"]),
        pages("/functions/{name}/invoke", functions.invoke, ["POST"], limit=max_body_bytes, what="the payload"),
        pages("/invocations", functions.invocations_page, ["GET"]),
        pages("/invocations/{id}", functions.invocation_page, ["GET"]),
        pages("/tail", functions.tail_page, ["GET"]),
        pages("/tail.json", functions.tail_json, ["GET"]),
        pages("/queues", events.queues_page, ["GET"]),
        pages("/queues/{queue}", events.queue_page, ["GET"]),
        pages("/queues/{queue}/redrive", events.redrive, ["POST"]),
        pages("/schedules", events.schedules_page, ["GET"]),
        pages("/triggers", events.triggers_page, ["GET"]),
        pages("/usage", usage.usage_page, ["GET"]),
        pages("/keys", admin.keys_page, ["GET"]),
        pages("/keys", admin.create_key, ["POST"]),
        pages("/keys/{id}/revoke", admin.revoke_key, ["POST"]),
        pages("/audit", admin.audit_page, ["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static")),
    ]  # fmt: skip
    return [
        Mount("/console", routes=routes, middleware=[Middleware(SecurityHeaders)]),
        Route("/", browser_home, methods=["GET"]),
    ]


async def home(request: Request) -> Response:
    return RedirectResponse("/console/functions", status_code=303)


async def browser_home(request: Request) -> Response:
    """GET /: a browser (it asks for HTML) goes to the console; API clients get the API's JSON 404."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/console/", status_code=303)
    return error_response(
        404, "not_found", "no route for GET /; the API is under /v1 (GET /v1/openapi.json), the console at /console/",
        request_id=request_id_of(request),
    )
