"""Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.

HTTP:  POST /incr/<key>  → {"key": k, "value": n}      GET /get/<key> → {"key": k, "value": n}
       DELETE /del/<key> → {"key": k, "deleted": true}  GET /keys?prefix=p → {"keys": [...]}
       GET /bucket/<bucket>/<key> reads any bucket: an ungranted one → 403 {"error": "denied", ...}
Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
       {"op": "incr", "key": k, "delta": d, "times": n}: n atomic increments by d in one invocation
       {"op": "cas", "key": k, "expected": text or null, "new": text} → {"swapped": bool}
       {"op": "put", "key": k, "value": text, "ttl_s": s or null}, {"op": "get-many", "keys": [...]},
       {"op": "put-many", "entries": {k: text}}
       {"op": "claim" | "lease" | "pair", ...}: as the Rust, Go and C counters (see their sources)
A host error is answered as {"error": code, "message": ...} (HTTP status by kind), not as a failure.
"""

from fnhost_sdk import App, Context, Event, HostError, Invoke, Request, Response, kv

BUCKET = "counters"
STATUS = {"denied": 403, "not-found": 404, "too-large": 413, "limit-exceeded": 429, "unavailable": 503}

app = App()


def run(op: str, bucket: str = BUCKET, key: str = "", prefix: str = "", **args: object) -> dict[str, object]:
    if op == "incr":  # atomic: concurrent invocations never lose a count
        delta, times = int(args.get("delta", 1)), int(args.get("times", 1))
        value = 0
        for _ in range(times):
            value = kv.increment(bucket, key, delta)
        return {"key": key, "value": value}
    if op == "cas":
        expected = args.get("expected")
        old = None if expected is None else str(expected).encode()
        return {"swapped": kv.compare_and_swap(bucket, key, old, str(args["new"]))}
    if op == "put":
        ttl = args.get("ttl_s")
        kv.set(bucket, key, str(args["value"]), ttl_s=None if ttl is None else float(ttl))
        return {"key": key}
    if op == "get-many":
        values = kv.get_many(bucket, list(args["keys"]))
        return {"values": [None if v is None else v.decode() for v in values]}
    if op == "put-many":
        kv.set_many(bucket, {k: str(v) for k, v in dict(args["entries"]).items()})
        return {"count": len(args["entries"])}
    if op == "claim":  # what the core-module counters do, for the same tests
        return {"key": key, "claimed": kv.compare_and_swap(bucket, key, None, "claimed")}
    if op == "lease":
        kv.set(bucket, key, "leased", ttl_s=0.2)
        return {"key": key, "leased": True}
    if op == "pair":
        kv.set_many(bucket, [(key, "1"), (prefix, "2")])
        values = kv.get_many(bucket, [key, prefix, f"{key}-absent"])
        return {"values": [None if v is None else v.decode() for v in values]}
    if op == "get":
        return {"key": key, "value": int(kv.get(bucket, key) or b"0")}
    if op == "delete":
        kv.delete(bucket, key)
        return {"key": key, "deleted": True}
    if op == "list":
        return {"keys": kv.list_keys(bucket, prefix)}
    raise ValueError(f"unknown op {op!r} (incr, get, delete, list, cas, put, get-many, put-many, claim, lease, pair)")


def failure(e: HostError) -> dict[str, object]:
    return {"error": e.code, "message": e.message}


@app.http
def handle(req: Request, ctx: Context) -> Response:
    parts = req.path.strip("/").split("/")
    routes = {
        ("POST", "incr"): lambda: run("incr", key=parts[1]),
        ("GET", "get"): lambda: run("get", key=parts[1]),
        ("DELETE", "del"): lambda: run("delete", key=parts[1]),
        ("GET", "keys"): lambda: run("list", prefix=req.query.get("prefix", "")),
        ("GET", "bucket"): lambda: run("get", bucket=parts[1], key=parts[2]),
    }
    want = {"incr": 2, "get": 2, "del": 2, "keys": 1, "bucket": 3}
    route = routes.get((req.method, parts[0]))
    if route is None or len(parts) != want[parts[0]]:
        return Response.json({"error": "not-found", "message": f"no route {req.method} {req.path}"}, 404)
    try:
        return Response.json(route())
    except HostError as e:
        return Response.json(failure(e), STATUS.get(e.code, 400))


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, object]:
    if not isinstance(event, Invoke):
        raise ValueError(f"counter handles direct invokes only, not {type(event).__name__}")
    args = event.json()
    try:
        return run(args.pop("op"), **args)
    except HostError as e:
        return failure(e)


WitWorld = app.world()
