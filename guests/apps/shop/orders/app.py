"""Orders: POST /orders {"item": "apple", "qty": 2} queues the order (202 {"queued": id}) for `tally`;
GET /report answers the latest report `report` wrote (404 before the first one)."""

import json

from fnhost_sdk import App, Context, Request, Response, kv, queue

VERSION = "1"
app = App()


@app.http
def handle(req: Request, ctx: Context) -> Response:
    if (req.method, req.path) == ("POST", "/orders"):
        try:
            order = req.json()
            item, qty = str(order["item"]), int(order.get("qty", 1))
        except (ValueError, KeyError, TypeError):
            return Response.json({"error": 'send {"item": "apple", "qty": 2}'}, 400)
        if not item or qty < 1:
            return Response.json({"error": "item must be a name and qty at least 1"}, 400)
        message_id = queue.publish("orders", json.dumps({"item": item, "qty": qty}))
        return Response.json({"queued": message_id, "version": VERSION}, 202)
    if (req.method, req.path) == ("GET", "/report"):
        report = kv.get("shop", "report")
        if report is None:
            return Response.json({"error": "no report yet; the schedule writes one"}, 404)
        return Response(report, 200, [("content-type", "application/json")])
    if (req.method, req.path) == ("GET", "/version"):
        return Response.json({"version": VERSION})
    return Response.json({"error": f"no route {req.method} {req.path}: POST /orders, GET /report"}, 404)


WitWorld = app.world()
