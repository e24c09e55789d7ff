"""Queues, queue triggers and schedules (docs/events.md)."""

from __future__ import annotations

import click

from ..client import Client
from ._common import POSITIVE, client_options, command, data_arg, group, print_json, table, utc

queues = group(
    "queues", "Durable queues: list, send, peek, purge, redrive.", example="fnhost queues peek orders --limit 5"
)


@command(queues, "list", example="fnhost queues list")
@client_options
def queues_list(api: Client, as_json: bool) -> int:
    """Queues holding messages: depth, in flight, age of the oldest."""
    listed = api.queues()
    if as_json:
        print_json({"queues": listed})
        return 0
    rows = [("QUEUE", "DEPTH", "IN FLIGHT", "OLDEST")]
    rows += [(q["queue"], str(q["depth"]), str(q["in_flight"]), f"{q['oldest_age_s']:.1f}s") for q in listed]
    table(rows)
    return 0


@command(queues, "send", example="fnhost queues send orders '{\"id\": 1}'\nfnhost queues send orders @order.json")
@click.argument("queue")
@click.argument("data")
@client_options
def queues_send(api: Client, as_json: bool, queue: str, data: str) -> int:
    """Publish a message (DATA: text, @FILE or @- for stdin); prints its id."""
    message_id = api.send_message(queue, data_arg(data, "DATA"))
    print_json({"queue": queue, "id": message_id}) if as_json else print(message_id)
    return 0


@command(queues, "peek", example="fnhost queues peek orders --limit 5")
@click.argument("queue")
@click.option("--limit", type=POSITIVE, default=10, show_default=True)
@client_options
def queues_peek(api: Client, as_json: bool, queue: str, limit: int) -> int:
    """The oldest messages, without claiming them."""
    messages = api.peek_messages(queue, limit=limit)
    if as_json:
        print_json({"queue": queue, "messages": messages})
        return 0
    rows = [("ID", "RECEIVES", "BODY")]
    rows += [(m["id"], str(m["receive_count"]), m["body"][:80]) for m in messages]
    table(rows)
    return 0


@command(queues, "purge", example="fnhost queues purge orders")
@click.argument("queue")
@client_options
def queues_purge(api: Client, as_json: bool, queue: str) -> int:
    """Delete every message of a queue."""
    deleted = api.purge_queue(queue)
    print_json({"queue": queue, "deleted": deleted}) if as_json else print(f"purged {deleted} message(s) from {queue}")
    return 0


@command(queues, "redrive", example="fnhost queues redrive orders-dlq")
@click.argument("queue")
@click.option("--to", help="the queue to move the messages to (default: the one whose trigger dead-letters here)")
@click.option("--limit", type=POSITIVE, default=100, show_default=True, help="at most this many messages (1..1000)")
@client_options
def queues_redrive(api: Client, as_json: bool, queue: str, to: str | None, limit: int) -> int:
    """Move dead letters back to the queue they came from."""
    done = api.redrive_queue(queue, to=to, limit=limit)
    if as_json:
        print_json(done)
    else:
        print(f"moved {done['count']} message(s) from {queue} to {done['to']}; {done['remaining']} left")
    return 0


triggers = group("triggers", "Queue triggers (queue -> function mappings).", example="fnhost triggers list")


@command(triggers, "list", example="fnhost triggers list --json")
@client_options
def triggers_list(api: Client, as_json: bool) -> int:
    """Queue -> function mappings."""
    mappings = api.queue_triggers()
    if as_json:
        print_json({"queue": mappings})
        return 0
    rows = [("FUNCTION", "QUEUE", "BATCH", "WINDOW", "VISIBILITY", "MAX RECEIVES", "POLLERS", "DLQ", "SOURCE")]
    for m in mappings:
        rows.append((
            m["function"], m["queue"], str(m["batch_size"]), f"{m['max_batching_window_ms']}ms",
            f"{m['visibility_timeout_s']}s", str(m["max_receive_count"]), str(m["pollers"]), m["dead_letter_queue"],
            m["source"],
        ))  # fmt: skip
    table(rows)
    return 0


schedules = group("schedules", "Schedules (cron and rate).", example="fnhost schedules list")


@command(schedules, "list", example="fnhost schedules list")
@client_options
def schedules_list(api: Client, as_json: bool) -> int:
    """Schedules, their next tick and last outcome."""
    listed = api.schedules()
    if as_json:
        print_json({"schedules": listed})
        return 0
    rows = [("FUNCTION", "NAME", "WHEN", "TIMEZONE", "NEXT (UTC)", "LAST OUTCOME", "FIRED", "SKIPPED")]
    for s in listed:
        when = s["cron"] or f"every {s['rate_s']}s"
        due = s["next_due_ms"] / 1000 if s["next_due_ms"] else None
        rows.append((s["function"], s["name"], when, s["timezone"], utc(due), s["last_outcome"] or "-",
                     str(s["fired"]), str(s["skipped"])))  # fmt: skip
    table(rows)
    return 0


COMMANDS = [queues, triggers, schedules]
