"""Queues (depth, age of the oldest message, dead letters: peek and redrive), schedules, triggers."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..api import events as api_events
from ..api.context import blocking
from ..control.auth import ADMIN
from ..namespaces import split
from .render import Console, ConsoleUser, see_other

PEEK = 20


def queue_url(namespace: str, plain: str) -> str:
    return f"/console/queues/{quote(plain, safe='')}?{urlencode({'ns': namespace})}"


async def queues_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/queues: every non-empty queue of the namespace (admins of it only, as in the API)."""
    namespace = console.namespace_of(request, user)
    await console.ctx.check(request, user.principal, ADMIN, None, namespace=namespace)
    queues = await api_events.queues_of(console.ctx, namespace)
    rows = []
    for q in queues:
        sources = await blocking(console.ctx.triggers.dead_letter_sources, q.queue)
        rows.append({"plain": split(q.queue)[1], "metrics": q, "sources": [split(s)[1] for s in sources]})
    return console.render(request, "queues.html", user, queues=rows)


async def queue_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/queues/{queue}: the oldest messages (peeked, not claimed) and, for a dead-letter
    queue, where a redrive sends them."""
    namespace = console.namespace_of(request, user)
    await console.ctx.check(request, user.principal, ADMIN, None, namespace=namespace)
    plain = request.path_params["queue"]
    queue = api_events.queue_in(namespace, plain)
    messages = await blocking(console.ctx.host.queues.peek, queue, PEEK)
    depth = await blocking(console.ctx.host.queues.depth, queue)
    sources = [split(s)[1] for s in await blocking(console.ctx.triggers.dead_letter_sources, queue)]
    return console.render(
        request,
        "queue.html",
        user,
        queue=plain,
        depth=depth,
        sources=sources,
        messages=[(m, m.body.decode("utf-8", "replace")) for m in messages],
    )


async def redrive(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/queues/{queue}/redrive: form {to?}; the dead letters go back (api.events.redrive_dead_letters)."""
    namespace = console.namespace_of(request, user)
    plain = request.path_params["queue"]
    to = (await console.form(request)).get("to")
    target = to.strip() if isinstance(to, str) and to.strip() else None
    queue = api_events.queue_in(namespace, plain)
    await api_events.redrive_dead_letters(console.ctx, request, user.principal, queue, target)
    return see_other(queue_url(namespace, plain))


async def schedules_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/schedules: the schedules of functions this key may read, with their next fire."""
    namespace = console.namespace_of(request, user)
    schedules = await api_events.visible_schedules(console.ctx, user.principal, namespace)
    return console.render(request, "schedules.html", user, schedules=[(s, split(s.function)[1]) for s in schedules])


async def triggers_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/triggers: queue triggers (event-source mappings) of functions this key may read."""
    namespace = console.namespace_of(request, user)
    mappings = await api_events.visible_triggers(console.ctx, user.principal, namespace)
    rows = [
        (m, split(m.function)[1], split(m.trigger.queue)[1], split(m.trigger.dead_letter_queue)[1]) for m in mappings
    ]
    return console.render(request, "triggers.html", user, mappings=rows)
