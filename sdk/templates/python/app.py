"""{{name}}: GET /hello?name=... greets and counts visits in the kv bucket `visits`; any event
returns the count. Build with `fnhost build .`, test with `python -m pytest test_function.py`."""

from fnhost_sdk import App, Context, Event, Request, Response, kv, log

BUCKET = "visits"
app = App()


def visits() -> int:
    return int(kv.get(BUCKET, "hello") or b"0")


@app.http
def handle(req: Request, ctx: Context) -> Response:
    if req.path != "/hello":
        return Response.json({"error": "not-found", "message": f"no route {req.path}"}, 404)
    count = visits() + 1
    kv.set(BUCKET, "hello", str(count))
    log.info(f"visit {count}")
    return Response.json({"message": f"Hello, {req.query.get('name', 'world')}!", "visits": count})


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, int]:
    return {"visits": visits()}


WitWorld = app.world()  # componentize-py exports this class
