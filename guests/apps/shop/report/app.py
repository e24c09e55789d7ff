"""Report: on each tick of its schedule, reads the totals `tally` keeps in kv `shop` and writes
`report` = {"orders": n, "totals": {item: qty}, "at_ms": tick, "signature": HMAC-SHA256 with the
secret `report-key`} (a reader holding the key can check the report came from here)."""

import hashlib
import hmac
import json

from fnhost_sdk import App, Context, Event, Schedule, kv, secrets

app = App()


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, object]:
    if not isinstance(event, Schedule):
        raise ValueError("report runs on its schedule")
    keys = kv.list_keys("shop", "total/")
    values = kv.get_many("shop", keys) if keys else []
    totals = {k.removeprefix("total/"): int(v or b"0") for k, v in zip(keys, values)}
    body = {"orders": int(kv.get("shop", "orders") or b"0"), "totals": totals, "at_ms": event.scheduled_unix_ms}
    text = json.dumps(body, sort_keys=True)
    signature = hmac.new(secrets.get("report-key").encode(), text.encode(), hashlib.sha256).hexdigest()
    kv.set("shop", "report", json.dumps({**body, "signature": signature}, sort_keys=True))
    return {"orders": body["orders"]}


WitWorld = app.world()
