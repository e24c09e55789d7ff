//! Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.
//! It answers byte for byte like guests/python/hello.

use fnhost::json::{self, Value};
use fnhost::{Context, Event, Request, Response};

fn greeting(name: &str) -> String {
    json::object([("message", format!("Hello, {}!", name).into())]).to_string()
}

fn http(ctx: &Context, req: Request) -> Result<Response, String> {
    match req.path.as_str() {
        "/echo" => {
            let content_type = req.header("content-type").filter(|v| !v.is_empty());
            let content_type = content_type.unwrap_or("application/octet-stream").to_string();
            Ok(Response::bytes(req.body, &content_type))
        }
        "/hello" => {
            let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
            Ok(Response::json_raw(greeting(&name)))
        }
        _ => {
            let query = req.query_params().into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            let echo = json::object([
                ("method", req.method.as_str().into()),
                ("path", req.path.as_str().into()),
                ("query", Value::Object(query)),
                ("user_agent", req.header("user-agent").into()),
                ("body_length", req.body.len().into()),
                ("function", ctx.function_name.as_str().into()),
                ("version", ctx.version.as_str().into()),
            ]);
            Ok(Response::json_raw(echo.to_string()))
        }
    }
}

fn event(_ctx: &Context, event: Event) -> Result<Vec<u8>, String> {
    match event {
        Event::Invoke(payload) => {
            let name = json::parse(&payload).ok().and_then(|v| v.get("name").and_then(Value::as_str).map(String::from));
            Ok(match name {
                Some(name) => greeting(&name).into_bytes(),
                None => payload,
            })
        }
        Event::QueueBatch(_) => Ok(greeting("QueueBatch").into_bytes()),
        Event::Schedule { .. } => Ok(greeting("Schedule").into_bytes()),
        Event::Blob { .. } => Ok(greeting("BlobChange").into_bytes()),
    }
}

fnhost::export!(http = http, event = event);
