"""Fetch: makes the outbound HTTP requests its event asks for (`fnhost_sdk.http`), so the contract
and the SSRF rules can be tried from a real guest.

Event: {"url": u, "method": "GET", "headers": {...}, "body": text, "timeout_ms": n or null,
        "times": n (repeat the request n times; stop at the first error)}
       → {"status": s, "headers": [[name, value]...], "body": text, "count": n}
       {"op": "urllib", "url": u}: tries Python's urllib (which cannot work in a function) and
       returns the error it raised.
A host error is answered as {"error": code, "message": ...}, not as a failure.
"""

import urllib.request

from fnhost_sdk import App, Context, Event, HostError, Invoke, http

app = App()


@app.event
def handle(event: Event, ctx: Context) -> dict[str, object]:
    assert isinstance(event, Invoke)
    args = event.json()
    if args.get("op") == "urllib":
        try:
            urllib.request.urlopen(args["url"], timeout=2)
        except Exception as e:  # noqa: BLE001 - the point is to show what it raises
            return {"error": type(e).__name__, "message": str(e)}
        return {"error": None}
    count, response = 0, None
    try:
        for _ in range(int(args.get("times", 1))):
            response = http.request(
                args.get("method", "GET"),
                args["url"],
                headers=args.get("headers"),
                body=args.get("body", ""),
                timeout_ms=args.get("timeout_ms"),
            )
            count += 1
    except HostError as e:
        return {"error": e.code, "message": e.message, "count": count}
    assert response is not None
    return {
        "status": response.status,
        "headers": [list(h) for h in response.headers],
        "body": response.text,
        "count": count,
    }


WitWorld = app.world()
