"""`create_app(host)`: the HTTP API over one `Host`, as a Starlette app (served by Hypercorn)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from ..console import console_routes
from ..control.audit import AuditLog, FailedAuthentications
from ..control.auth import ApiKeys
from ..control.bundles import BundleLimits
from ..control.deploys import Deployer
from ..host import Host
from ..triggers import Triggers
from . import admin, blobs, events, follow, functions, invoke, usage
from .context import ApiContext, Followers, InvocationPool, context_of
from .errors import EXCEPTION_HANDLERS
from .metrics import Metrics
from .middleware import BodyBudget, BodyLimitMiddleware, RequestIdMiddleware
from .openapi import openapi_document
from .paths import FUNCTION_URL, NAMESPACED_FUNCTION_URL, in_namespace, is_namespaced

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # invoke payloads and function-URL bodies (Lambda's limit)
DEFAULT_MAX_BUNDLE_BYTES = BundleLimits().max_upload_bytes
DEFAULT_MAX_BODY_BYTES_IN_FLIGHT = 2 * DEFAULT_MAX_BUNDLE_BYTES  # every request body the server holds at once
DEFAULT_BODY_TIMEOUT_S = 30.0  # a body must have arrived this long after its request started
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BLOB = "/v1/blobs/{bucket}/{key:path}"


def create_app(
    host: Host,
    *,
    read_only: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
    max_body_bytes_in_flight: int = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    workers: int = 4,
    global_concurrency: int = 64,
    function_share: float = 0.5,
    namespace_share: float = 1.0,
    trusted_keys: Sequence[str] = (),
    keys: ApiKeys | None = None,
    audit_log: AuditLog | None = None,
    failed_auth: FailedAuthentications | None = None,
    triggers: Triggers | None = None,
    blob_min_rate: int = 1 << 20,
    deployer: Deployer | None = None,
    stopping: threading.Event | None = None,
    lifespan: Lifespan[Starlette] | None = None,
    max_followers: int = 64,
    follow_max_s: float = 25.0,
) -> Starlette:
    """The fnhost HTTP API (see docs/api.md).

    `workers` threads run invocations; at most `global_concurrency` are admitted at once (queued
    or running), beyond that callers get 429; one function gets at most `function_share` of both, one
    namespace at most `namespace_share`.
    `read_only` serves functions but refuses every control-plane call with 405. `trusted_keys`, if
    given, must have signed every deployed bundle.
    Request bodies: at most `max_body_bytes` each (`max_bundle_bytes` for deploys), all of them
    together at most `max_body_bytes_in_flight` (then 503), each arrived within `body_timeout_s`.
    Blob uploads stream instead (each at most `host.blobs.max_object_bytes`, no share of the budget,
    `body_timeout_s` plus one second per `blob_min_rate` bytes).
    `triggers` serves async invokes, queues and schedules; without it they are accepted and stored
    but run only where some process has started `Triggers` on the same data dir (`fnhost serve` does).
    `lifespan` starts and stops background work with the app; `stopping`, once set, ends long
    requests (`.../invocations/follow`). At most `max_followers` follow streams are open at once, each
    for at most `follow_max_s` (keep it below the HTTP server's read timeout). `fnhost.Server` passes
    all of these; see there.
    """
    triggers = triggers if triggers is not None else Triggers(host)
    audit_log = audit_log if audit_log is not None else host.open_store(AuditLog)
    metrics = Metrics()
    metrics.watch_triggers(triggers)
    metrics.watch_runtime(host)
    deployer = deployer or Deployer(
        host, audit_log, trusted_keys=trusted_keys, limits=BundleLimits(max_upload_bytes=max_bundle_bytes)
    )
    ctx = ApiContext(
        host=host,
        keys=keys if keys is not None else host.open_store(ApiKeys),
        audit_log=audit_log,
        metrics=metrics,
        pool=InvocationPool(workers, global_concurrency, metrics, function_share, namespace_share),
        triggers=triggers,
        read_only=read_only,
        failed_auth=failed_auth if failed_auth is not None else FailedAuthentications(audit_log),
        deployer=deployer,
        stopping=stopping if stopping is not None else threading.Event(),
        followers=Followers(max_followers, follow_max_s),
    )

    if max_body_bytes_in_flight < max(max_body_bytes, max_bundle_bytes):
        raise ValueError(
            f"max_body_bytes_in_flight ({max_body_bytes_in_flight}) must be at least the largest body "
            f"allowed ({max(max_body_bytes, max_bundle_bytes)}), or such bodies could never be sent"
        )
    budget = BodyBudget(max_body_bytes_in_flight)

    def route(
        path: str, endpoint: Callable[..., Any], methods: list[str], limit: int = max_body_bytes, streamed: bool = False
    ) -> Route:
        body_limit = Middleware(
            BodyLimitMiddleware,
            max_bytes=limit,
            budget=budget,
            timeout_s=body_timeout_s,
            streamed=streamed,
            min_rate=blob_min_rate,
        )
        return Route(path, endpoint, methods=methods, middleware=[body_limit])

    def routes_of(
        path: str,
        endpoint: Callable[..., Any],
        methods: list[str],
        limit: int = max_body_bytes,
        streamed: bool = False,
    ) -> list[Route]:
        """The route, and its twin under /v1/namespaces/{namespace} when it is namespaced (api/paths.py)."""
        twins = [in_namespace(path)] if is_namespaced(path) else []
        return [route(p, endpoint, methods, limit, streamed) for p in (path, *twins)]

    routes = [
        *routes_of("/healthz", healthz, ["GET"]),
        *routes_of("/readyz", readyz, ["GET"]),
        *routes_of("/metrics", metrics.endpoint, ["GET"]),
        *routes_of("/v1/openapi.json", openapi, ["GET"]),
        *routes_of("/v1/functions", functions.list_functions, ["GET"]),
        *routes_of("/v1/functions/{name}", functions.deploy, ["PUT"], max_bundle_bytes),
        *routes_of("/v1/functions/{name}", functions.get_function, ["GET"]),
        *routes_of("/v1/functions/{name}", functions.delete_function, ["DELETE"]),
        *routes_of("/v1/functions/{name}/versions", functions.list_versions, ["GET"]),
        *routes_of("/v1/releases", functions.release, ["POST"]),
        *routes_of("/v1/functions/{name}/aliases/{alias}", functions.set_alias, ["PUT"]),
        *routes_of("/v1/functions/{name}/aliases/{alias}", functions.delete_alias, ["DELETE"]),
        *routes_of("/v1/functions/{name}/invoke", invoke.invoke, ["POST"]),
        *routes_of("/v1/functions/{name}/invocations", invoke.list_invocations, ["GET"]),
        *routes_of("/v1/functions/{name}/invocations/follow", follow.follow_invocations, ["GET"]),
        *routes_of("/v1/invocations/{id}", invoke.get_invocation, ["GET"]),
        *routes_of("/v1/usage", usage.get_usage, ["GET"]),
        *routes_of("/v1/queues", events.list_queues, ["GET"]),
        *routes_of("/v1/queues/{queue}/messages", events.send_message, ["POST"]),
        *routes_of("/v1/queues/{queue}/messages", events.peek_messages, ["GET"]),
        *routes_of("/v1/queues/{queue}/messages", events.purge_queue, ["DELETE"]),
        *routes_of("/v1/blobs/{bucket}", blobs.list_blobs, ["GET"]),
        *routes_of(BLOB, blobs.put_blob, ["PUT"], host.blobs.max_object_bytes, streamed=True),
        *routes_of(BLOB, blobs.get_blob, ["GET", "HEAD"]),
        *routes_of(BLOB, blobs.delete_blob, ["DELETE"]),
        *routes_of("/v1/queues/{queue}/redrive", events.redrive_queue, ["POST"]),
        *routes_of("/v1/triggers", events.list_triggers, ["GET"]),
        *routes_of("/v1/schedules", events.list_schedules, ["GET"]),
        *routes_of("/v1/secrets", admin.list_secrets, ["GET"]),
        *routes_of("/v1/secrets/{name}", admin.set_secret, ["PUT"]),
        *routes_of("/v1/secrets/{name}", admin.delete_secret, ["DELETE"]),
        *routes_of("/v1/shares", admin.create_share, ["POST"]),
        *routes_of("/v1/shares", admin.list_shares, ["GET"]),
        *routes_of("/v1/shares/{id}", admin.revoke_share, ["DELETE"]),
        *routes_of("/v1/keys", admin.create_key, ["POST"]),
        *routes_of("/v1/keys", admin.list_keys, ["GET"]),
        *routes_of("/v1/keys/{id}", admin.revoke_key, ["DELETE"]),
        *routes_of("/v1/audit", admin.list_audit, ["GET"]),
        *routes_of("/v1/audit/verify", admin.verify_audit, ["GET"]),
    ]
    # function URLs first: they are most of the traffic, and Starlette tries routes in order (after the
    # ~80 API routes, each function URL request cost ~80 regex matches); no API path starts like them
    function_urls = [
        route(path, invoke.function_url, ALL_METHODS)
        for base in (FUNCTION_URL, NAMESPACED_FUNCTION_URL)
        for path in (base, base + "/{path:path}")
    ]
    routes = [*function_urls, *routes]
    console = console_routes(ctx, budget=budget, body_timeout_s=body_timeout_s, max_bundle_bytes=max_bundle_bytes,
                             max_body_bytes=max_body_bytes)  # fmt: skip
    app = Starlette(
        routes=[*routes, *console],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.fnhost = ctx
    return app


async def healthz(request: Request) -> Response:
    """GET /healthz: liveness; no key needed."""
    ctx = context_of(request)
    return JSONResponse({"status": "ok", "read_only": ctx.read_only, "invocations_in_flight": ctx.pool.in_flight})


async def readyz(request: Request) -> Response:
    """GET /readyz: ready to serve (the database reachable, its schema the one this node expects); no key needed."""
    problem = await run_in_threadpool(context_of(request).host.not_ready)
    if problem is not None:
        return JSONResponse({"status": "not ready", "reason": problem}, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ready"})


async def openapi(request: Request) -> Response:
    """GET /v1/openapi.json: the OpenAPI 3.1 description of this API; no key needed."""
    return JSONResponse(openapi_document(read_only=context_of(request).read_only))
