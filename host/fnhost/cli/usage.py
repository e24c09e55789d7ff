"""Usage per function: `fnhost usage` over `GET /v1/usage`."""

from __future__ import annotations

import click

from ..client import Client
from ._common import client_options, command, print_json, table, utc


@command(name="usage", example="fnhost usage\nfnhost usage --period day --since 2026-11-01 --function hello")
@click.option("--function", help="one function (default: every one the key may read)")
@click.option("--period", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option("--since", help="Unix seconds or ISO 8601 (default: 24 hours, or 30 days, before --until)")
@click.option("--until", help="Unix seconds or ISO 8601 (default: now)")
@client_options
def usage(api: Client, as_json: bool, function: str | None, period: str, since: str | None, until: str | None) -> int:
    """Invocations, errors, duration p50/p99, billed GB-s and fuel per function and hour or day."""
    listed = api.usage(function=function, period=period, since=since, until=until)
    if as_json:
        print_json(listed)
        return 0
    if not listed["usage"]:
        print(f"no invocations between {utc(listed['since'])} and {utc(listed['until'])} UTC")
        return 0
    rows = [("FUNCTION", "START (UTC)", "INVOCATIONS", "ERRORS", "THROTTLES", "P50 MS", "P99 MS", "GB-S", "FUEL")]
    for u in [*listed["usage"], *({**t, "start": None} for t in listed["totals"])]:
        d = u["duration_ms"]
        start = "total" if u["start"] is None else utc(u["start"])[:16]
        rows.append((
            u["function"], start, str(u["invocations"]), str(u["errors"]), str(u["throttles"]), _ms(d["p50"]),
            _ms(d["p99"]), f"{u['gb_seconds']:.6f}", str(u["fuel"]),
        ))  # fmt: skip
    table(rows)
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


COMMANDS = [usage]
