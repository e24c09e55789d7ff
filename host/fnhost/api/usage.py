"""Usage per function: `GET /v1/usage` over `Host.usage` (rollups per hour or day, stores/usage.py).

Read like invocation listings: a key sees the usage of the functions it may deploy or invoke, in
its own namespace; a key limited to some functions sees theirs only; another namespace's key sees
none (and a `function=` it may not see is the same 404 as one that does not exist).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import DEPLOY, INVOKE, Principal
from ..names import FUNCTION
from ..namespaces import qualify, split
from ..stores.usage import PERIODS, totals
from .context import READ, ApiContext, blocking, context_of, namespace_of
from .errors import InvalidRequest

DEFAULT_SPAN_S = {"hour": 86400, "day": 30 * 86400}
"""The range when `since` is not given: the last 24 hours of hourly rows, the last 30 days of daily ones."""


async def get_usage(request: Request) -> Response:
    """GET /v1/usage[?function=NAME&period=hour|day&since=T&until=T]: rollups per function and
    period bucket, and each function's totals over the range. T: Unix seconds or ISO 8601 (UTC if
    no offset is given)."""
    ctx = context_of(request)
    namespace = namespace_of(request)
    params = request.query_params
    period = params.get("period", "hour")
    if period not in PERIODS:
        raise InvalidRequest(f"period: must be one of {', '.join(PERIODS)}, got {period[:40]!r}")
    raw_until, raw_since = params.get("until"), params.get("since")
    until = _time(raw_until, "until") if raw_until else time.time()
    since = _time(raw_since, "since") if raw_since else until - DEFAULT_SPAN_S[period]
    principal = await ctx.authenticate(request)
    rows, summed = await usage_for(
        ctx, request, principal, namespace, period=period, since=since, until=until, name=params.get("function")
    )
    return JSONResponse(
        {"namespace": namespace, "period": period, "since": since, "until": until, "usage": rows, "totals": summed}
    )


async def usage_for(
    ctx: ApiContext,
    request: Request,
    principal: Principal,
    namespace: str,
    *,
    period: str,
    since: float,
    until: float,
    name: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rollups of `namespace` (or of its function `name`) that `principal` may read, and each
    function's totals over the range — for the API and the console alike."""
    function = None
    if name is not None:
        if not FUNCTION.matches(name):
            raise InvalidRequest(f"function: {name[:80]!r} is not a function name ({FUNCTION.rule})")
        function = qualify(namespace, name)
    await ctx.check(request, principal, READ, function)
    rollups = await blocking(
        ctx.host.usage, period=period, since=since, until=until, namespace=namespace, function=function
    )
    if function is not None and not rollups:  # a typo'd name is a 404, not an empty listing
        await blocking(ctx.host.get_function, function)
    seen = [r for r in rollups if principal.allows(DEPLOY, r.function) or principal.allows(INVOKE, r.function)]
    rows = [{**r.to_dict(), "function": split(r.function)[1]} for r in seen]
    summed = [{**r.to_dict(), "function": split(r.function)[1]} for r in totals(seen)]
    for total in summed:
        del total["start"], total["start_iso"]
    return rows, summed


def _time(raw: str, name: str) -> float:
    """A query time: Unix seconds, or an ISO 8601 date or date-time (UTC unless it names an offset)."""
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                f"{name}: {raw[:40]!r} is neither Unix seconds nor an ISO 8601 time (e.g. 2026-12-02T17:00:00Z)"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value < 2**40:
        raise InvalidRequest(f"{name}: {raw[:40]!r} is out of range (Unix seconds, 0..2^40)")
    return value
