//! Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.
//! It answers byte for byte like guests/python/counter.
//!
//! HTTP:  POST /incr/<key> → {"key":k,"value":n}       GET /get/<key> → {"key":k,"value":n}
//!        DELETE /del/<key> → {"key":k,"deleted":true}  GET /keys?prefix=p → {"keys":[...]}
//!        GET /bucket/<bucket>/<key> reads any bucket: an ungranted one → 403 {"error":"denied",...}
//! Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
//!        {"op": "claim", "key": k} → {"key":k,"claimed":b} (compare-and-swap only if absent)
//!        {"op": "lease", "key": k} → {"key":k,"leased":true} (set for 200 ms)
//!        {"op": "pair", "key": k, "prefix": p} → {"values":["1","2",null]} (set-many k, p; get-many k, p, k-absent)
//! A host error is answered as {"error": kind, "message": ...} (HTTP status by kind), not as a failure.

use fnhost::json::{self, Value};
use fnhost::{kv, Context, Event, Request, Response};

/// How long `lease` keeps its key (the TTL tests wait past it).
const LEASE_MS: u64 = 200;
const BUCKET: &str = "counters";

/// Why an operation did not produce a result: a host error is answered, anything else fails.
enum Failure {
    Host(fnhost::Error),
    Guest(String),
}

impl From<fnhost::Error> for Failure {
    fn from(e: fnhost::Error) -> Self {
        Failure::Host(e)
    }
}

fn current(bucket: &str, key: &str) -> Result<i64, Failure> {
    match kv::get(bucket, key) {
        Ok(raw) => String::from_utf8_lossy(&raw)
            .trim()
            .parse()
            .map_err(|_| Failure::Guest(format!("value of {:?} is not an integer", key))),
        Err(fnhost::Error::NotFound) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn run(op: &str, bucket: &str, key: &str, prefix: &str) -> Result<Value, Failure> {
    Ok(match op {
        "incr" => {
            let value = kv::increment(bucket, key, 1)?; // atomic: concurrent invocations never lose a count
            json::object([("key", key.into()), ("value", value.into())])
        }
        "get" => json::object([("key", key.into()), ("value", current(bucket, key)?.into())]),
        "delete" => {
            kv::delete(bucket, key)?;
            json::object([("key", key.into()), ("deleted", true.into())])
        }
        "list" => json::object([("keys", kv::list_keys(bucket, prefix, 1000)?.into())]),
        "claim" => {
            let claimed = kv::compare_and_swap(bucket, key, None, "claimed")?;
            json::object([("key", key.into()), ("claimed", claimed.into())])
        }
        "lease" => {
            kv::set_with_ttl(bucket, key, "leased", LEASE_MS)?;
            json::object([("key", key.into()), ("leased", true.into())])
        }
        "pair" => {
            kv::set_many(bucket, &[(key, &b"1"[..]), (prefix, &b"2"[..])])?;
            let absent = format!("{}-absent", key);
            let values = kv::get_many(bucket, &[key, prefix, &absent])?;
            let values = values.into_iter().map(|v| match v {
                Some(v) => Value::String(String::from_utf8_lossy(&v).into_owned()),
                None => Value::Null,
            });
            json::object([("values", Value::Array(values.collect()))])
        }
        _ => return Err(Failure::Guest(format!("unknown op {:?} (incr, get, delete, list, claim, lease, pair)", op))),
    })
}

fn host_error(e: &fnhost::Error) -> Value {
    json::object([("error", e.kind().into()), ("message", e.message().into())])
}

fn status(e: &fnhost::Error) -> u16 {
    match e {
        fnhost::Error::Denied(_) => 403,
        fnhost::Error::NotFound => 404,
        fnhost::Error::TooLarge(_) => 413,
        fnhost::Error::LimitExceeded(_) => 429,
        fnhost::Error::Unavailable(_) => 503,
        fnhost::Error::Invalid(_) => 400,
        fnhost::Error::Timeout(_) => 504,
    }
}

fn http(_ctx: &Context, req: Request) -> Result<Response, String> {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let result = match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["incr", key]) => run("incr", BUCKET, key, ""),
        ("GET", ["get", key]) => run("get", BUCKET, key, ""),
        ("DELETE", ["del", key]) => run("delete", BUCKET, key, ""),
        ("GET", ["keys"]) => run("list", BUCKET, "", &req.query_param("prefix").unwrap_or_default()),
        ("GET", ["bucket", bucket, key]) => run("get", bucket, key, ""),
        _ => {
            let message = format!("no route {} {}", req.method, req.path);
            let body = json::object([("error", "not-found".into()), ("message", message.into())]);
            return Ok(Response::json_raw(body.to_string()).with_status(404));
        }
    };
    match result {
        Ok(value) => Ok(Response::json_raw(value.to_string())),
        Err(Failure::Host(e)) => Ok(Response::json_raw(host_error(&e).to_string()).with_status(status(&e))),
        Err(Failure::Guest(message)) => Err(message),
    }
}

fn event(_ctx: &Context, event: Event) -> Result<String, String> {
    let payload = match event {
        Event::Invoke(payload) => payload,
        _ => return Err("counter handles direct invokes only".to_string()),
    };
    let args = json::parse(&payload).map_err(|e| format!("payload is not JSON: {}", e))?;
    let field = |name: &str, default: &str| -> String {
        args.get(name).and_then(Value::as_str).unwrap_or(default).to_string()
    };
    let op = args.get("op").and_then(Value::as_str).ok_or("payload has no \"op\" string")?;
    match run(op, &field("bucket", BUCKET), &field("key", ""), &field("prefix", "")) {
        Ok(value) => Ok(value.to_string()),
        Err(Failure::Host(e)) => Ok(host_error(&e).to_string()),
        Err(Failure::Guest(message)) => Err(message),
    }
}

fnhost::export!(http = http, event = event);
