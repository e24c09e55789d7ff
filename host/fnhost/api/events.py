"""Event-driven invocation over HTTP: async invokes, queues, queue triggers, schedules (docs/events.md).

Thin handlers over `fnhost.triggers.Triggers` and `Host.queues`, the same calls the library offers.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import ADMIN, INVOKE, Principal
from ..errors import FnhostError
from ..names import RESOURCE
from ..namespaces import namespace_of as namespace_of_stored
from ..namespaces import qualify
from ..stores.errors import InvalidArgument
from ..triggers import MAX_REDRIVE, QueueMapping, QueueMetrics, Redrive, ScheduleStatus
from .context import ApiContext, blocking, context_of, namespace_of, require_read
from .errors import InvalidRequest
from .parsing import chain_depth_of, json_object, query_int
from .serialize import jsonable

INVOCATION_TYPE = "x-fnhost-invocation-type"
IDEMPOTENCY_KEY = "x-fnhost-idempotency-key"


async def invoke_async(request: Request, name: str, qualifier: str | int | None) -> Response:
    """POST /v1/functions/{name}/invoke with `X-Fnhost-Invocation-Type: Event`: 202 once stored."""
    ctx = context_of(request)
    await ctx.authorize(request, INVOKE, name)
    chain_depth = chain_depth_of(request)
    ctx.host.chains.admit(name, chain_depth)  # before the body: a refused request does not read it
    payload = await request.body()
    submit = functools.partial(
        ctx.triggers.invoke_async,
        name,
        payload,
        qualifier=qualifier,
        idempotency_key=request.headers.get(IDEMPOTENCY_KEY),
        chain_depth=chain_depth,
    )
    accepted = await blocking(submit)
    location = f"/v1/invocations/{accepted.id}"
    return JSONResponse(
        {"id": accepted.id, "function": name, "status": accepted.status, "location": location},
        status_code=202,
        headers={"Location": location, "X-Fnhost-Invocation-Id": accepted.id},
    )


async def list_queues(request: Request) -> Response:
    """GET /v1/queues: depth, in-flight count and oldest message age of every non-empty queue of
    the namespace."""
    ctx = context_of(request)
    namespace = namespace_of(request)
    await ctx.authorize(request, ADMIN, namespace=namespace)
    return JSONResponse({"queues": jsonable(await queues_of(ctx, namespace))})


async def queues_of(ctx: ApiContext, namespace: str) -> list[QueueMetrics]:
    """Depth, in flight and oldest age of `namespace`'s non-empty queues (the caller checked `admin` there)."""
    return [q for q in await blocking(ctx.triggers.queue_metrics) if namespace_of_stored(q.queue) == namespace]


async def send_message(request: Request) -> Response:
    """POST /v1/queues/{queue}/messages: body = the message; returns its id."""
    ctx = context_of(request)
    queue = _queue_name(request)
    ctx.writable("sending to queues")
    await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    body = await request.body()
    message_id = await blocking(ctx.host.queues.publish, queue, body, chain_depth=chain_depth_of(request))
    return JSONResponse({"queue": queue, "id": message_id}, status_code=201)


async def peek_messages(request: Request) -> Response:
    """GET /v1/queues/{queue}/messages[?limit=10]: the oldest messages, not claimed (bodies as text)."""
    ctx = context_of(request)
    queue = _queue_name(request)
    await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    limit = query_int(request, "limit", 10, 1, 1000)
    messages = await blocking(ctx.host.queues.peek, queue, limit)
    return JSONResponse({"queue": queue, "messages": jsonable(messages)})


async def purge_queue(request: Request) -> Response:
    """DELETE /v1/queues/{queue}/messages: delete every message of the queue (audited)."""
    ctx = context_of(request)
    queue = _queue_name(request)
    ctx.writable("purging queues")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    async with ctx.audited(request, "queue.purge", queue, principal) as note:
        deleted = await blocking(ctx.host.queues.purge, queue)
        note.detail["deleted"] = deleted
    return JSONResponse({"queue": queue, "deleted": deleted})


async def redrive_queue(request: Request) -> Response:
    """POST /v1/queues/{queue}/redrive: body {"to"?: QUEUE, "limit"?: N} (or none); moves dead letters
    back to the queue whose trigger dead-letters into this one (or to `to`), audited."""
    ctx = context_of(request)
    queue = _queue_name(request)
    ctx.writable("redriving queues")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    data = await json_object(request) if await request.body() else {}
    done = await redrive_dead_letters(ctx, request, principal, queue, data.get("to"), data.get("limit", 100))
    return JSONResponse(
        {"queue": queue, "to": done.to, "moved": done.moved, "count": len(done.moved), "remaining": done.remaining}
    )


async def redrive_dead_letters(
    ctx: ApiContext, request: Request, principal: Principal, queue: str, to: object, limit: object = 100
) -> Redrive:
    """Move dead letters of `queue` (a store name) back to their source, or to queue `to` (a plain name in
    the same namespace), for an admin of that namespace, audited: the API and the console."""
    ctx.writable("redriving queues")
    namespace = namespace_of_stored(queue)
    await ctx.check(request, principal, ADMIN, None, namespace=namespace)
    async with ctx.audited(request, "queue.redrive", queue, principal) as note:
        if to is not None and not isinstance(to, str):
            raise InvalidRequest('"to" must be the name of the queue to move the messages to, or absent')
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequest(f'"limit" must be an integer 1..{MAX_REDRIVE}, got {limit!r}')
        target = None if to is None else queue_in(namespace, to)
        done = await blocking(ctx.triggers.redrive, queue, to=target, limit=limit)
        note.detail.update(to=done.to, moved=len(done.moved))
    return done


async def list_triggers(request: Request) -> Response:
    """GET /v1/triggers: queue mappings (from manifests and the API), of functions the key may read."""
    ctx = context_of(request)
    principal = await ctx.authenticate(request)
    namespace = namespace_of(request)
    return JSONResponse({"queue": [m.to_dict() for m in await visible_triggers(ctx, principal, namespace)]})


async def visible_triggers(ctx: ApiContext, principal: Principal, namespace: str) -> list[QueueMapping]:
    """The queue mappings of `namespace`'s functions that `principal` may read."""
    mappings = await blocking(ctx.triggers.queue_mappings)
    return [m for m in mappings if _may_read(principal, m.function, namespace)]


async def list_schedules(request: Request) -> Response:
    """GET /v1/schedules: every schedule with its next and last tick, of functions the key may read."""
    ctx = context_of(request)
    principal = await ctx.authenticate(request)
    namespace = namespace_of(request)
    return JSONResponse({"schedules": [s.to_dict() for s in await visible_schedules(ctx, principal, namespace)]})


async def visible_schedules(ctx: ApiContext, principal: Principal, namespace: str) -> list[ScheduleStatus]:
    """The schedules of `namespace`'s functions that `principal` may read, with their next and last tick."""
    schedules = await blocking(ctx.triggers.schedules)
    return [s for s in schedules if _may_read(principal, s.function, namespace)]


def _queue_name(request: Request) -> str:
    """The store name of the queue in the path, in the request's namespace."""
    return queue_in(namespace_of(request), request.path_params["queue"])


def queue_in(namespace: str, name: str) -> str:
    """The store name of queue `name` (a plain name, checked) in `namespace`."""
    if not RESOURCE.matches(name):
        raise InvalidArgument(f"queue name {name!r} is not valid: use 1..128 letters, digits, '.', '_' or '-'")
    return qualify(namespace, name)


def _may_read(principal: Principal, function: str, namespace: str) -> bool:
    if namespace_of_stored(function) != namespace:
        return False
    try:
        require_read(principal, function)
    except FnhostError:
        return False
    return True
