"""Tally: for each order in a batch from the queue `orders`, adds its qty to `total/<item>` and one to
`orders` in kv `shop` (atomic increments: batches running at once never lose a count). A malformed
order is reported failed, so it is retried and then dead-lettered instead of stopping the others."""

import json

from fnhost_sdk import App, Context, Event, EventResult, QueueBatch, kv

app = App()


@app.event
def on_event(event: Event, ctx: Context) -> EventResult:
    if not isinstance(event, QueueBatch):
        raise ValueError("tally is triggered by the queue `orders`")
    failed = []
    for message in event.messages:
        try:
            order = json.loads(message.body)
            item, qty = str(order["item"]), int(order["qty"])
        except (ValueError, KeyError, TypeError):
            failed.append(message.id)
            continue
        kv.increment("shop", f"total/{item}", qty)
        kv.increment("shop", "orders", 1)
    return EventResult(output={"tallied": len(event.messages) - len(failed)}, failed_message_ids=failed)


WitWorld = app.world()
