"""Consumer: a test and example guest for event-driven invocation (queue batches, schedules, async).

Everything it sees is recorded in the kv bucket `consumer`, one key per delivery, so a test can count
deliveries without a read-modify-write race:

    queue batch   each message: `msg/<message id>/<invocation id>` = its receive count.
                  A body starting with `poison` is reported failed (partial batch failure via
                  failed-message-ids); a body `crash` fails the whole batch; `sleep:MS` sleeps
                  first; `forward:<queue>:<text>` publishes <text> to <queue> (granted: `forwarded`).
    schedule      `tick/<schedule>/<scheduled ms>/<invocation id>` = the time it ran (ms).
    invoke        JSON {"key": k, "fail_times": n}: `try/<k>/<invocation id>` per attempt; the first
                  n attempts raise (the async-invoke retry tests), later ones return {"key": k}.
"""

import time

from fnhost_sdk import App, Context, Event, EventResult, Invoke, QueueBatch, Schedule, kv, queue

BUCKET = "consumer"

app = App()


def _now_ms() -> int:
    return int(time.time() * 1000)


def on_batch(batch: QueueBatch, ctx: Context) -> EventResult:
    failed: list[str] = []
    for m in batch.messages:
        body = m.body
        if body.startswith(b"sleep:"):
            time.sleep(int(body[6:]) / 1000)
        if body == b"crash":
            raise RuntimeError(f"consumer: message {m.id} crashes the batch")
        if body.startswith(b"poison"):
            failed.append(m.id)
            continue
        if body.startswith(b"forward:"):
            _, target, text = body.decode().split(":", 2)
            queue.publish(target, text)
        kv.set(BUCKET, f"msg/{m.id}/{ctx.invocation_id}", str(m.receive_count))
    return EventResult(output={"processed": len(batch.messages) - len(failed)}, failed_message_ids=failed)


def on_invoke(event: Invoke, ctx: Context) -> dict[str, object]:
    args = event.json()
    key = str(args["key"])
    kv.set(BUCKET, f"try/{key}/{ctx.invocation_id}", str(_now_ms()))
    attempts = len(kv.list_keys(BUCKET, f"try/{key}/"))
    if attempts <= int(args.get("fail_times", 0)):
        raise RuntimeError(f"consumer: attempt {attempts} of {key} fails on purpose")
    return {"key": key, "attempts": attempts}


@app.event
def on_event(event: Event, ctx: Context) -> EventResult | dict[str, object]:
    if isinstance(event, QueueBatch):
        return on_batch(event, ctx)
    if isinstance(event, Schedule):
        kv.set(BUCKET, f"tick/{event.schedule}/{event.scheduled_unix_ms}/{ctx.invocation_id}", str(_now_ms()))
        return {"schedule": event.schedule}
    return on_invoke(event, ctx)


WitWorld = app.world()
