//! What a handler receives and returns (the records of `sdk/wit/fnhost.wit`).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the host knows about this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Unique id of this invocation; it also names the invocation in logs and the API.
    pub invocation_id: String,
    pub function_name: String,
    /// The function version being run (`"3"`).
    pub version: String,
    /// Wall-clock deadline in milliseconds since the Unix epoch; past it the instance is stopped.
    pub deadline_unix_ms: u64,
    /// The memory cap of this instance, in MiB.
    pub memory_limit_mb: u32,
}

impl Context {
    /// Milliseconds left before the deadline (0 once it has passed).
    pub fn remaining_ms(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        self.deadline_unix_ms.saturating_sub(now)
    }
}

/// An HTTP request routed to the function URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path relative to the function URL, without the query (`/items`; `/` when empty).
    pub path: String,
    query: String,
    path_with_query: String,
    /// Header names are lower-case; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn new(method: String, path_with_query: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        // As Python's `urlsplit`: the fragment is dropped and an empty path is "/".
        let without_fragment = path_with_query.split('#').next().unwrap_or("");
        let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
        let path = if path.is_empty() { "/" } else { path };
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            path_with_query: path_with_query.to_string(),
            headers,
            body,
        }
    }

    /// The raw query string, without the `?` (`""` when there is none).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Every query parameter in order, `+` and `%XX` decoded (`a=1&b=x+y&c` gives
    /// `[("a","1"),("b","x y"),("c","")]`), as Python's `parse_qsl(q, keep_blank_values=True)`.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// The first value of each query parameter, in order of first appearance (the Python SDK's
    /// `req.query`).
    pub fn query_params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in self.query_pairs() {
            if !out.iter().any(|(seen, _)| *seen == k) {
                out.push((k, v));
            }
        }
        out
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// `path?query` as received.
    pub fn path_with_query(&self) -> &str {
        &self.path_with_query
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text; invalid UTF-8 sequences become U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// An HTTP response. Build one with [`Response::text`], [`Response::json_raw`] or
/// [`Response::new`], then adjust it with the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names are sent lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// 200, `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Self {
        Response::new(200).with_header("content-type", "text/plain; charset=utf-8").with_body(body.into())
    }

    /// 200, `application/json`, with `json` (already serialized, e.g. by [`crate::json`]) as the body.
    pub fn json_raw(json: impl Into<String>) -> Self {
        Response::new(200).with_header("content-type", "application/json").with_body(json.into())
    }

    /// 200 with `body` as is and the given content type.
    pub fn bytes(body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        Response::new(200).with_header("content-type", content_type).with_body(body)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// One message of a queue batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub queue: String,
    pub body: Vec<u8>,
    /// How many times this message has been delivered, this delivery included.
    pub receive_count: u32,
}

/// Everything that can start the event handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A direct invoke: the caller's payload, as sent.
    Invoke(Vec<u8>),
    QueueBatch(Vec<Message>),
    /// One tick of a schedule; `scheduled_unix_ms` is when it was due.
    Schedule { schedule: String, scheduled_unix_ms: u64 },
    /// An object change delivered by a blob trigger (`event` is "put" or "delete").
    Blob { bucket: String, key: String, event: String, size: u64, sha256: String, receive_count: u32 },
}

/// What the event handler returns. A handler may also return `Vec<u8>`, `String` or `&str`,
/// which become the output with no failed messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventResult {
    /// The invocation's output (returned to a synchronous caller).
    pub output: Vec<u8>,
    /// For queue batches: ids of the messages to redeliver. Empty means the batch succeeded.
    pub failed_message_ids: Vec<String>,
}

impl From<Vec<u8>> for EventResult {
    fn from(output: Vec<u8>) -> Self {
        EventResult { output, failed_message_ids: Vec::new() }
    }
}

impl From<String> for EventResult {
    fn from(output: String) -> Self {
        output.into_bytes().into()
    }
}

impl From<&str> for EventResult {
    fn from(output: &str) -> Self {
        output.as_bytes().to_vec().into()
    }
}
