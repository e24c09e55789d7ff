"""Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.

`POST /echo` returns the request body as is, so this guest doubles as the large-body benchmark.
"""

from fnhost_sdk import App, Context, Event, Invoke, Request, Response

app = App()


@app.http
def handle(req: Request, ctx: Context) -> Response:
    if req.path == "/echo":
        return Response(
            req.body, headers={"content-type": req.headers.get("content-type") or "application/octet-stream"}
        )
    if req.path == "/hello":
        return Response.json({"message": f"Hello, {req.query.get('name', 'world')}!"})
    return Response.json(
        {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "user_agent": req.headers.get("User-Agent"),
            "body_length": len(req.body),
            "function": ctx.function_name,
            "version": ctx.function_version,
        }
    )


@app.event
def on_event(event: Event, ctx: Context) -> bytes | dict[str, str]:
    if not isinstance(event, Invoke):
        return {"message": f"Hello, {type(event).__name__}!"}
    try:
        data = event.json()
    except ValueError:
        return event.payload
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return {"message": f"Hello, {data['name']}!"}
    return event.payload


WitWorld = app.world()
