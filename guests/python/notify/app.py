"""Notify: reads the secret `api-token` and publishes notifications to the queue `notifications`.

The secret's value never leaves the function: only its length and a sha256 prefix are returned.

Event (JSON): {"op": "notify", ...} (or no op, or a non-JSON payload): publish the payload as is to
`notifications` → {"message_id": id, "token_length": n, "token_sha256": "..."}
              {"op": "secret", "name": s}              read any secret (ungranted → denied)
              {"op": "publish", "queue": q, "body": b} publish to any queue (ungranted → denied)
HTTP:  POST /notify publishes the request body the same way.
A host error is answered as {"error": code, "message": ...}, with HTTP status 403 for denied.
"""

import hashlib

from fnhost_sdk import App, Context, Event, HostError, Invoke, Request, Response, queue, secrets

TOKEN = "api-token"
QUEUE = "notifications"
STATUS = {"denied": 403, "not-found": 404, "too-large": 413, "limit-exceeded": 429, "unavailable": 503}

app = App()


def describe_secret(name: str) -> dict[str, object]:
    value = secrets.get(name)
    return {"name": name, "length": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()[:12]}


def notify(body: bytes) -> dict[str, object]:
    token = describe_secret(TOKEN)
    message_id = queue.publish(QUEUE, body)
    return {"message_id": message_id, "token_length": token["length"], "token_sha256": token["sha256"]}


def run(payload: bytes) -> dict[str, object]:
    try:
        args = Invoke(payload).json()
    except ValueError:
        args = None
    if not isinstance(args, dict) or args.get("op", "notify") == "notify":
        return notify(payload)
    if args["op"] == "secret":
        return describe_secret(args["name"])
    if args["op"] == "publish":
        return {"message_id": queue.publish(args["queue"], args.get("body", ""))}
    raise ValueError(f"unknown op {args['op']!r} (notify, secret, publish)")


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, object]:
    if not isinstance(event, Invoke):
        raise ValueError(f"notify handles direct invokes only, not {type(event).__name__}")
    try:
        return run(event.payload)
    except HostError as e:
        return {"error": e.code, "message": e.message}


@app.http
def handle(req: Request, ctx: Context) -> Response:
    if (req.method, req.path) != ("POST", "/notify"):
        return Response.json({"error": "not-found", "message": "POST /notify"}, 404)
    try:
        return Response.json(notify(req.body))
    except HostError as e:
        return Response.json({"error": e.code, "message": e.message}, STATUS.get(e.code, 400))


WitWorld = app.world()
