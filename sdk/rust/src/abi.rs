//! The wire format of docs/abi.md: input decoding, output encoding, and the buffers handed
//! across the boundary.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::fmt::Display;

use crate::types::{Context, Event, EventResult, Message, Request, Response};

const TAG_OK: u8 = 0;
const TAG_FAILURE: u8 = 1;

/// `fnhost_alloc`: `size` writable bytes owned by the guest, or 0 when memory is exhausted.
pub fn alloc(size: i32) -> i32 {
    if size < 0 {
        return 0;
    }
    if size == 0 {
        // Any non-null pointer is a valid place for zero bytes; nothing is allocated or freed.
        return std::ptr::NonNull::<u8>::dangling().as_ptr() as i32;
    }
    match Layout::from_size_align(size as usize, 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { alloc::alloc(layout) as i32 },
        Err(_) => 0,
    }
}

/// Frees an input buffer that the host obtained from `fnhost_alloc(len)`.
unsafe fn free_input(ptr: i32, len: i32) {
    if len > 0 {
        alloc::dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(len as usize, 1));
    }
}

/// The last output: it must outlive the handler's return, until the host has copied it. Each
/// call replaces (and so frees) the previous one, which keeps a reused instance from leaking.
struct OutputSlot(UnsafeCell<Vec<u8>>);

// SAFETY: wasm32-wasi guests are single-threaded; the host never calls into an instance
// concurrently.
unsafe impl Sync for OutputSlot {}

static OUTPUT: OutputSlot = OutputSlot(UnsafeCell::new(Vec::new()));

fn publish(out: Vec<u8>) -> i64 {
    // SAFETY: single-threaded, and no reference into the slot outlives this function.
    let slot = unsafe { &mut *OUTPUT.0.get() };
    *slot = out;
    (((slot.as_ptr() as u32 as u64) << 32) | slot.len() as u32 as u64) as i64
}

fn failure(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.len());
    out.push(TAG_FAILURE);
    out.extend_from_slice(message.as_bytes());
    out
}

fn with_input<T>(ptr: i32, len: i32, decode: impl FnOnce(&mut Reader) -> Result<T, String>) -> Result<T, String> {
    if len < 0 || (len > 0 && ptr == 0) {
        return Err(format!("fnhost SDK: invalid input buffer (ptr {}, len {})", ptr, len));
    }
    // SAFETY: the host wrote `len` bytes at `ptr`, a buffer it got from `fnhost_alloc(len)`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let mut reader = Reader::new(bytes);
    let decoded = decode(&mut reader).and_then(|value| reader.finish().map(|_| value));
    // SAFETY: the decoded values own copies; nothing borrows the input any more.
    unsafe { free_input(ptr, len) };
    decoded.map_err(|e| format!("fnhost SDK: malformed input from the host: {}", e))
}

/// Decodes an HTTP input, runs `handler` and returns the packed output pointer and length.
pub fn run_http<F, E>(ptr: i32, len: i32, handler: F) -> i64
where
    F: FnOnce(&Context, Request) -> Result<Response, E>,
    E: Display,
{
    let out = match with_input(ptr, len, |r| Ok((r.context()?, r.request()?))) {
        Err(message) => failure(&message),
        Ok((ctx, req)) => match handler(&ctx, req) {
            Ok(resp) => {
                let mut w = Writer(vec![TAG_OK]);
                w.u16(resp.status);
                w.headers(&resp.headers);
                w.bytes(&resp.body);
                w.0
            }
            Err(e) => failure(&e.to_string()),
        },
    };
    publish(out)
}

/// Decodes an event input, runs `handler` and returns the packed output pointer and length.
pub fn run_event<F, R, E>(ptr: i32, len: i32, handler: F) -> i64
where
    F: FnOnce(&Context, Event) -> Result<R, E>,
    R: Into<EventResult>,
    E: Display,
{
    let out = match with_input(ptr, len, |r| Ok((r.context()?, r.event()?))) {
        Err(message) => failure(&message),
        Ok((ctx, event)) => match handler(&ctx, event) {
            Ok(result) => {
                let result = result.into();
                let mut w = Writer(vec![TAG_OK]);
                w.bytes(&result.output);
                w.u32(result.failed_message_ids.len() as u32);
                for id in &result.failed_message_ids {
                    w.bytes(id.as_bytes());
                }
                w.0
            }
            Err(e) => failure(&e.to_string()),
        },
    };
    publish(out)
}

/// Reads the little-endian, unpadded encoding of docs/abi.md.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            _ => Err(format!("truncated at byte {} (wanted {} more of {})", self.pos, n, self.buf.len())),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    pub(crate) fn string(&mut self) -> Result<String, String> {
        let at = self.pos;
        String::from_utf8(self.bytes()?).map_err(|_| format!("string at byte {} is not UTF-8", at))
    }

    /// A `u32` count, then `count` items; the count is checked against the bytes left so that a
    /// corrupt count cannot ask for a huge allocation.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        let count = self.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(self.buf.len() - self.pos));
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    fn headers(&mut self) -> Result<Vec<(String, String)>, String> {
        self.list(|r| Ok((r.string()?, r.string()?)))
    }

    fn finish(&self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes after the input", self.buf.len() - self.pos))
        }
    }

    fn context(&mut self) -> Result<Context, String> {
        Ok(Context {
            invocation_id: self.string()?,
            function_name: self.string()?,
            version: self.string()?,
            deadline_unix_ms: self.u64()?,
            memory_limit_mb: self.u32()?,
        })
    }

    fn request(&mut self) -> Result<Request, String> {
        let method = self.string()?;
        let path_with_query = self.string()?;
        let headers = self.headers()?;
        let body = self.bytes()?;
        Ok(Request::new(method, &path_with_query, headers, body))
    }

    fn event(&mut self) -> Result<Event, String> {
        match self.u8()? {
            0 => Ok(Event::Invoke(self.bytes()?)),
            1 => Ok(Event::QueueBatch(self.list(|r| {
                Ok(Message { id: r.string()?, queue: r.string()?, body: r.bytes()?, receive_count: r.u32()? })
            })?)),
            2 => Ok(Event::Schedule { schedule: self.string()?, scheduled_unix_ms: self.u64()? }),
            kind => Err(format!("unknown event kind {}", kind)),
        }
    }

    /// A `list<string>` (the success value of `kv_list_keys`).
    pub(crate) fn strings(&mut self) -> Result<Vec<String>, String> {
        let list = self.list(|r| r.string())?;
        self.finish()?;
        Ok(list)
    }

    /// A whole `outbound-response` record (outbound_http_request): status (u16), headers, body.
    pub(crate) fn outbound_response(&mut self) -> Result<(u16, Vec<(String, String)>, Vec<u8>), String> {
        let status = u16::from_le_bytes(self.array()?);
        let headers = self.headers()?;
        let body = self.bytes()?;
        self.finish()?;
        Ok((status, headers, body))
    }

    /// A whole `list<option<bytes>>` (kv get-many): per item `0`, or `1` and the bytes.
    pub(crate) fn options(&mut self) -> Result<Vec<Option<Vec<u8>>>, String> {
        let list = self.list(|r| match r.u8()? {
            0 => Ok(None),
            1 => r.bytes().map(Some),
            tag => Err(format!("option tag {}", tag)),
        })?;
        self.finish()?;
        Ok(list)
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }

    fn headers(&mut self, headers: &[(String, String)]) {
        self.u32(headers.len() as u32);
        for (name, value) in headers {
            self.bytes(name.to_ascii_lowercase().as_bytes());
            self.bytes(value.as_bytes());
        }
    }
}
