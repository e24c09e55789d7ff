"""Pinned: a test guest that blocks where its deadline cannot stop it.

`time.sleep` is captured before `fnhost_sdk` replaces it with its sliced sleep, so `sleep` here is
one WASI preview-2 wait: Wasmtime cannot interrupt it, and the thread running it stays blocked
until it returns (the host must give up waiting at the deadline, and count the thread as pinned).

    HTTP GET /sleep?s=N    sleep N seconds (default 4), then answer {"slept_s": N}
    invoke "sleep:N"       the same as an event
"""

import time

_blocking_sleep = time.sleep  # before the SDK is imported: the unsliced, uninterruptible sleep

from fnhost_sdk import App, Context, Event, Invoke, Request, Response  # noqa: E402

app = App()


def _seconds(text: str) -> float:
    return float(text) if text else 4.0


@app.http
def handle(req: Request, ctx: Context) -> Response:
    seconds = _seconds(req.query.get("s", ""))
    _blocking_sleep(seconds)
    return Response.json({"slept_s": seconds})


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, float]:
    text = event.text() if isinstance(event, Invoke) else ""
    seconds = _seconds(text.partition(":")[2])
    _blocking_sleep(seconds)
    return {"slept_s": seconds}


WitWorld = app.world()
