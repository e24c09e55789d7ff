"""GET /v1/functions/{name}/invocations/follow: invocation records as they are written, streamed.

The response is NDJSON: one invocation record per line (as `GET /v1/invocations/{id}` answers),
oldest first, and a last line ``{"end": {"reason": ..., "after": CURSOR}}`` saying why the stream
ended — ``max_s`` (each stream is bounded; continue with ``?after=CURSOR``), ``stopping`` (the
server is shutting down) or ``revoked`` (the key no longer reads the function). A client that
goes away ends it too. Records come from the store, not from this process, so a follower on one
node sees invocations run on every node of a cluster.

Bounds, per server and per connection: at most `max_followers` streams at once (more get 503), each
at most `max_s` seconds (the server's cap, below its read timeout), each poll at most
`POLL_LIMIT` records, the key re-checked every `RECHECK_S`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..errors import FnhostError, NotFound
from .context import READ, ApiContext, blocking, context_of, function_of, require_read
from .errors import InvalidRequest, ServerBusy
from .serialize import jsonable

POLL_S = 0.5
POLL_LIMIT = 200
SLACK_S = 2.0
"""How far back each poll reads again: a record's transaction may commit after its `recorded_at`."""
RECHECK_S = 5.0


async def follow_invocations(request: Request) -> Response:
    """GET /v1/functions/{name}/invocations/follow[?since=ID|after=CURSOR][&max_s=N]: NDJSON, see above."""
    ctx = context_of(request)
    name = function_of(request)
    principal = await ctx.authorize(request, READ, name)
    followers = ctx.followers
    max_s = _seconds(request, "max_s", followers.max_s)
    since, after_param = request.query_params.get("since"), request.query_params.get("after")
    if since and after_param:
        raise InvalidRequest("give since (an invocation id) or after (a cursor from an end line), not both")
    await blocking(ctx.host.get_function, name)  # a typo'd name is a 404, as for the listing
    if since:
        after = await blocking(ctx.host.invocations.recorded_at, since, name)
        if after is None:
            raise NotFound(
                f"{name} has no invocation {since!r} (the 'since' cursor); it may have aged out of "
                "retention: follow without it to start from now"
            )
    elif after_param:
        after = _seconds(request, "after", 0.0, most=1e11)
    else:
        after = await blocking(ctx.host.invocations.clock)
    if followers.open >= followers.max_followers:
        raise ServerBusy(
            f"{followers.open} log followers are connected, this server's limit; retry in a moment, "
            "or list recent invocations without --follow"
        )
    followers.open += 1
    authorization = request.headers.get("authorization")

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for line in _stream(ctx, name, after, max_s, authorization):
                yield line
        finally:
            followers.open -= 1

    del principal  # checked again, by token, while the stream lasts
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})


async def _stream(
    ctx: ApiContext, name: str, after: float, max_s: float, authorization: str | None
) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + max_s
    next_check = time.monotonic() + RECHECK_S
    newest = after  # the newest recorded_at sent (or the start)
    seen: dict[str, float] = {}
    reason = "max_s"
    while True:
        if ctx.stopping.is_set():
            reason = "stopping"
            break
        if time.monotonic() >= next_check:
            next_check = time.monotonic() + RECHECK_S
            if not await _still_reads(ctx, authorization, name):
                reason = "revoked"
                break
        rows = await blocking(ctx.host.invocations.recorded_since, name, max(after, newest - SLACK_S), POLL_LIMIT)
        for recorded_at, record in rows:
            if record.id in seen:
                continue
            seen[record.id] = recorded_at
            newest = max(newest, recorded_at)
            yield json.dumps(jsonable(record), separators=(",", ":")).encode() + b"\n"
        for old in [i for i, t in seen.items() if t < newest - SLACK_S]:
            del seen[old]
        if time.monotonic() >= deadline:
            break
        if len(rows) < POLL_LIMIT:
            await anyio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
    yield json.dumps({"end": {"reason": reason, "after": newest}}).encode() + b"\n"


async def _still_reads(ctx: ApiContext, authorization: str | None, name: str) -> bool:
    try:
        principal = await blocking(ctx.keys.authenticate, authorization)
        require_read(principal, name)
    except FnhostError:
        return False
    return True


def _seconds(request: Request, param: str, default: float, *, most: float | None = None) -> float:
    raw = request.query_params.get(param)
    if raw is None:
        return default
    limit = most if most is not None else default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value <= limit):
        raise InvalidRequest(
            f"{param}: must be a number of seconds, more than 0 and at most {limit:g}, got {raw[:40]!r}"
        )
    return value
