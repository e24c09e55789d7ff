//! {{name}}: GET /hello?name=... greets and counts visits in the kv bucket `visits`; any event
//! returns the count. Build with `fnhost build .`, test with `python -m pytest test_function.py`.

use fnhost::json;
use fnhost::{kv, log, Context, Event, Request, Response};

const BUCKET: &str = "visits";

fn visits() -> Result<i64, fnhost::Error> {
    match kv::get(BUCKET, "hello") {
        Ok(raw) => Ok(String::from_utf8_lossy(&raw).trim().parse().unwrap_or(0)),
        Err(fnhost::Error::NotFound) => Ok(0),
        Err(e) => Err(e),
    }
}

fn http(_ctx: &Context, req: Request) -> Result<Response, String> {
    if req.path != "/hello" {
        let body = json::object([("error", "not-found".into()), ("message", format!("no route {}", req.path).into())]);
        return Ok(Response::json_raw(body.to_string()).with_status(404));
    }
    let count = visits().map_err(|e| e.to_string())? + 1;
    kv::set(BUCKET, "hello", count.to_string()).map_err(|e| e.to_string())?;
    log::info(&format!("visit {}", count));
    let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
    let body = json::object([("message", format!("Hello, {}!", name).into()), ("visits", count.into())]);
    Ok(Response::json_raw(body.to_string()))
}

fn event(_ctx: &Context, _event: Event) -> Result<String, String> {
    let count = visits().map_err(|e| e.to_string())?;
    Ok(json::object([("visits", count.into())]).to_string())
}

fnhost::export!(http = http, event = event);
