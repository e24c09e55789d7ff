"""Usage charts: invocations and errors per hour (or day) for each function the key may read,
drawn as inline SVG from the same rollups as `GET /v1/usage` (`api.usage.usage_for`)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..api.errors import InvalidRequest
from ..api.usage import DEFAULT_SPAN_S, usage_for
from ..stores.usage import PERIODS
from .render import Console, ConsoleUser

CHART_W, CHART_H = 720, 120
"""The chart's drawing area in SVG units (the CSS scales it to the page)."""
PERIOD_S = {"hour": 3600, "day": 86400}


async def usage_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/usage?period=hour|day: per function, a bar per period (errors in their own
    colour) and the totals (invocations, errors, p50/p99, billed GB-s, fuel)."""
    namespace = console.namespace_of(request, user)
    period = request.query_params.get("period", "hour")
    if period not in PERIODS:
        raise InvalidRequest(f"period: must be one of {', '.join(PERIODS)}, got {period[:40]!r}")
    step = PERIOD_S[period]
    until = time.time()
    since = (until - DEFAULT_SPAN_S[period]) // step * step + step
    rows, totals = await usage_for(console.ctx, request, user.principal, namespace, period=period, since=since,
                                   until=until)  # fmt: skip
    slots = int((until - since) // step) + 1
    charts = [_chart(t, [r for r in rows if r["function"] == t["function"]], since, step, slots) for t in totals]
    return console.render(request, "usage.html", user, period=period, charts=charts, slots=slots)


def _chart(total: dict[str, Any], rows: list[dict[str, Any]], since: float, step: int, slots: int) -> dict[str, Any]:
    """One function's bars: SVG rectangles (x, y, width, height) for all invocations and for errors."""
    per_slot: dict[int, list[int]] = {}
    for r in rows:
        slot = int((r["start"] - since) // step)
        if 0 <= slot < slots:
            counts = per_slot.setdefault(slot, [0, 0])
            counts[0] += r["invocations"]
            counts[1] += r["errors"]
    peak = max((c[0] for c in per_slot.values()), default=0) or 1
    width = CHART_W / slots
    bars = []
    for slot, (calls, errors) in sorted(per_slot.items()):
        x = round(slot * width + 1, 1)
        h_all = round(CHART_H * calls / peak, 1)
        h_err = round(CHART_H * errors / peak, 1)
        start = time.strftime("%Y-%m-%d %H:%M", time.gmtime(since + slot * step))
        bars.append({"x": x, "w": round(max(width - 2, 1), 1), "h": h_all, "y": round(CHART_H - h_all, 1),
                     "eh": h_err, "ey": round(CHART_H - h_err, 1),
                     "title": f"{start} UTC: {calls} invocations, {errors} errors"})  # fmt: skip
    return {"total": total, "bars": bars, "peak": peak, "w": CHART_W, "h": CHART_H}
