//! Fetch: makes the outbound HTTP request its event asks for (`fnhost::http`); it answers like
//! guests/python/fetch.
//!
//! Event: {"url": u, "method": "GET", "headers": {name: value}, "body": text, "timeout_ms": n}
//!        → {"status": s, "headers": [[name, value]...], "body": text}
//! A host error is answered as {"error": kind, "message": ...}, not as a failure.

use fnhost::json::{self, Value};
use fnhost::{http, Context, Event};

fn event(_ctx: &Context, event: Event) -> Result<String, String> {
    let payload = match event {
        Event::Invoke(payload) => payload,
        _ => return Err("fetch handles direct invokes only".to_string()),
    };
    let args = json::parse(&payload).map_err(|e| format!("payload is not JSON: {}", e))?;
    let text = |name: &str, default: &str| args.get(name).and_then(Value::as_str).unwrap_or(default).to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(fields)) = args.get("headers") {
        for (name, value) in fields {
            headers.push((name.clone(), value.as_str().unwrap_or("").to_string()));
        }
    }
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let timeout = args.get("timeout_ms").and_then(Value::as_i64).map(|t| t as u32);
    let body = text("body", "");
    let out = match http::request(&text("method", "GET"), &text("url", ""), &pairs, body.as_bytes(), timeout) {
        Ok(r) => {
            let headers = r.headers.iter().map(|(k, v)| Value::Array(vec![k.as_str().into(), v.as_str().into()]));
            json::object([
                ("status", (r.status as i64).into()),
                ("headers", Value::Array(headers.collect())),
                ("body", r.text().into()),
            ])
        }
        Err(e) => json::object([("error", e.kind().into()), ("message", e.message().into())]),
    };
    Ok(out.to_string())
}

fnhost::export!(event = event);
