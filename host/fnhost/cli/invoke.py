"""Running functions and reading what they did: invoke, invocation, logs."""

from __future__ import annotations

import json
import sys

import click

from ..client import Client, Invocation
from ._common import POSITIVE, client_options, command, data_arg, function_name, print_json, say


@command(
    name="invoke",
    example='fnhost invoke hello --data \'{"name": "you"}\'\nfnhost invoke hello --data @event.json --async',
)
@function_name
@click.option("--data", help="payload: text/JSON, @FILE, or @- for stdin")
@click.option("--qualifier", help="version number or alias (default live)")
@click.option("-v", "--verbose", is_flag=True, help="print invocation id, version, outcome")
@click.option("async_", "--async", is_flag=True, help="store the event and return at once (202)")
@click.option("--idempotency-key", help="with --async: a repeat with this key returns the same invocation")
@client_options
def invoke(
    api: Client,
    as_json: bool,
    name: str,
    data: str | None,
    qualifier: str | None,
    verbose: bool,
    async_: bool,
    idempotency_key: str | None,
) -> int:
    """Invoke a function's event handler; prints its output."""
    payload = b"" if data is None else data_arg(data, "--data")
    if async_:
        accepted = api.invoke_async(name, payload, qualifier=qualifier, idempotency_key=idempotency_key)
        if as_json:
            print_json(accepted)
        else:
            print(f"accepted {accepted['id']} ({accepted['status']}); status: fnhost invocation {accepted['id']}")
        return 0
    result = api.invoke(name, payload, qualifier=qualifier)
    if verbose:
        say(f"invocation {result.invocation_id} version {result.version} outcome {result.outcome}")
    sys.stdout.buffer.write(result.output)
    if sys.stdout.isatty() and not result.output.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0


@command(name="invocation", example="fnhost invocation 0193f0c2-...")
@click.argument("id")
@client_options
def invocation(api: Client, as_json: bool, id: str) -> int:
    """One invocation, or an async invoke's status."""
    record = api.invocation(id)
    if as_json:
        print_json(record)
        return 0
    for key, value in record.items():
        if value is not None and key not in ("logs", "report"):
            print(f"{key}: {value}")
    return 0


@command(
    name="logs", example="fnhost logs hello --limit 5\nfnhost logs hello --follow      # then new ones as they finish"
)
@function_name
@click.option("--limit", type=POSITIVE, default=20, show_default=True, help="how many recent invocations")
@click.option("-f", "--follow", is_flag=True, help="then print new invocations as they finish, until Ctrl-C")
@client_options
def logs(api: Client, as_json: bool, name: str, limit: int, follow: bool) -> int:
    """Recent invocations of a function: their logs and REPORT lines, oldest first.

    With --follow, new invocations follow as they finish, from every node of a cluster (with
    --json: one JSON record per line)."""
    records = api.invocations(name, limit=limit)
    if as_json and not follow:
        print_json({"name": name, "invocations": records})
        return 0
    for r in reversed(records):
        print_json_line(r) if as_json else print_invocation(r)
    if follow:
        printed = {r["id"] for r in records}  # the newest started may not be the last written
        for r in api.follow_invocations(name, since=records[0]["id"] if records else None):
            if r["id"] not in printed:
                print_json_line(r) if as_json else print_invocation(r)
        say(f"fnhost: the server at {api.url} is stopping; stopped following {name}")
    return 0


def print_json_line(record: Invocation) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


def print_invocation(r: Invocation) -> None:
    print(f"START RequestId: {r['id']} Version: {r['version']} Trigger: {r['trigger']}")
    if r["logs"]:
        print(r["logs"].rstrip("\n"))
    if r["error"]:
        print(f"ERROR {r['outcome']}: {r['error']}")
    print(r["report"], flush=True)


COMMANDS = [invoke, invocation, logs]
