//! The host capabilities: `kv`, `queue`, `secrets`, `log`, `http` (imports of module `fnhost@0.2.0`,
//! the core ABI of contract version 0.2.0: docs/abi.md).

use std::fmt;

mod sys {
    #[link(wasm_import_module = "fnhost@0.2.0")]
    extern "C" {
        pub fn kv_get(bucket_ptr: *const u8, bucket_len: usize, key_ptr: *const u8, key_len: usize) -> i64;
        pub fn kv_set(
            bucket_ptr: *const u8,
            bucket_len: usize,
            key_ptr: *const u8,
            key_len: usize,
            value_ptr: *const u8,
            value_len: usize,
        ) -> i64;
        pub fn kv_delete(bucket_ptr: *const u8, bucket_len: usize, key_ptr: *const u8, key_len: usize) -> i64;
        pub fn kv_list_keys(
            bucket_ptr: *const u8,
            bucket_len: usize,
            prefix_ptr: *const u8,
            prefix_len: usize,
            limit: u32,
        ) -> i64;
        pub fn kv_increment(bucket_ptr: *const u8, bucket_len: usize, key_ptr: *const u8, key_len: usize, delta: i64)
            -> i64;
        pub fn kv_compare_and_swap(
            bucket_ptr: *const u8,
            bucket_len: usize,
            key_ptr: *const u8,
            key_len: usize,
            has_expected: i32,
            expected_ptr: *const u8,
            expected_len: usize,
            new_ptr: *const u8,
            new_len: usize,
        ) -> i64;
        // kv_set's parameters, then the TTL
        pub fn kv_set_with_ttl(b: *const u8, bl: usize, k: *const u8, kl: usize, v: *const u8, vl: usize, ttl_ms: u64)
            -> i64;
        pub fn kv_get_many(bucket_ptr: *const u8, bucket_len: usize, keys_ptr: *const u8, keys_len: usize) -> i64;
        pub fn kv_set_many(bucket_ptr: *const u8, bucket_len: usize, entries_ptr: *const u8, entries_len: usize)
            -> i64;
        pub fn queue_publish(queue_ptr: *const u8, queue_len: usize, body_ptr: *const u8, body_len: usize) -> i64;
        pub fn secrets_get(name_ptr: *const u8, name_len: usize) -> i64;
        pub fn log_write(level: i32, msg_ptr: *const u8, msg_len: usize);
        pub fn outbound_http_request(
            method_ptr: *const u8,
            method_len: usize,
            url_ptr: *const u8,
            url_len: usize,
            headers_ptr: *const u8,
            headers_len: usize,
            body_ptr: *const u8,
            body_len: usize,
            has_timeout: i32,
            timeout_ms: u32,
        ) -> i64;
        pub fn result_len() -> i32;
        pub fn result_read(dst_ptr: *mut u8) -> i32;
    }
}

/// An expected failure of a host call (WIT `types.error`). The strings say what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not granted to this function by its manifest.
    Denied(String),
    /// A missing key, or a granted secret that is not set.
    NotFound,
    /// A key, value, message or name over its size limit.
    TooLarge(String),
    /// This invocation's host-call budget (count or bytes) is spent.
    LimitExceeded(String),
    /// The backing store failed; retrying may work.
    Unavailable(String),
    /// Malformed argument (empty key, bad name...).
    Invalid(String),
    /// An outbound HTTP request got no complete response in time ([`http`]).
    Timeout(String),
}

impl Error {
    fn from_code(code: i64, message: String) -> Error {
        match code {
            1 => Error::Denied(message),
            2 => Error::NotFound,
            3 => Error::TooLarge(message),
            4 => Error::LimitExceeded(message),
            5 => Error::Unavailable(message),
            6 => Error::Invalid(message),
            7 => Error::Timeout(message),
            _ => Error::Unavailable(format!("unknown host error code {}: {}", code, message)),
        }
    }

    /// The WIT case name: `denied`, `not-found`, `too-large`, `limit-exceeded`, `unavailable`, `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::NotFound => "not-found",
            Error::TooLarge(_) => "too-large",
            Error::LimitExceeded(_) => "limit-exceeded",
            Error::Unavailable(_) => "unavailable",
            Error::Invalid(_) => "invalid",
            Error::Timeout(_) => "timeout",
        }
    }

    /// What happened, as the host said it; the kind when the host gave no message (as the
    /// Python SDK's `HostError.message`).
    pub fn message(&self) -> &str {
        let message = match self {
            Error::NotFound => "",
            Error::Denied(m)
            | Error::TooLarge(m)
            | Error::LimitExceeded(m)
            | Error::Unavailable(m)
            | Error::Invalid(m)
            | Error::Timeout(m) => m.as_str(),
        };
        if message.is_empty() {
            self.kind()
        } else {
            message
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str(self.kind()),
            _ => write!(f, "{}: {}", self.kind(), self.message()),
        }
    }
}

impl std::error::Error for Error {}

/// Lets a handler returning `Result<_, String>` use `?` on host calls.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Takes the pending result (the success value, or the error message).
fn take_pending() -> Vec<u8> {
    // SAFETY: `result_read` writes exactly `result_len()` bytes into a buffer of that capacity.
    unsafe {
        let len = sys::result_len().max(0) as usize;
        let mut buf = Vec::with_capacity(len);
        let written = sys::result_read(buf.as_mut_ptr()).max(0) as usize;
        buf.set_len(written.min(len));
        buf
    }
}

/// A host call's `i64`: `>= 0` is success, `-code` a failure whose message is pending.
fn check(rc: i64) -> Result<i64, Error> {
    if rc >= 0 {
        Ok(rc)
    } else {
        Err(Error::from_code(-rc, String::from_utf8_lossy(&take_pending()).into_owned()))
    }
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| Error::Invalid(format!("the host returned a {} that is not UTF-8", what)))
}

/// Key-value buckets granted in the manifest (`[grants] kv = ["name"]`).
pub mod kv {
    use super::{check, sys, take_pending, Error};

    /// The value of `key`; [`Error::NotFound`] if it is not set.
    pub fn get(bucket: &str, key: &str) -> Result<Vec<u8>, Error> {
        check(unsafe { sys::kv_get(bucket.as_ptr(), bucket.len(), key.as_ptr(), key.len()) })?;
        Ok(take_pending())
    }

    /// Stores `value` under `key`.
    pub fn set(bucket: &str, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let value = value.as_ref();
        check(unsafe {
            sys::kv_set(bucket.as_ptr(), bucket.len(), key.as_ptr(), key.len(), value.as_ptr(), value.len())
        })?;
        Ok(())
    }

    /// Removes `key`; deleting a missing key succeeds.
    pub fn delete(bucket: &str, key: &str) -> Result<(), Error> {
        check(unsafe { sys::kv_delete(bucket.as_ptr(), bucket.len(), key.as_ptr(), key.len()) })?;
        Ok(())
    }

    /// Keys starting with `prefix`, in byte order, at most `limit` of them.
    pub fn list_keys(bucket: &str, prefix: &str, limit: u32) -> Result<Vec<String>, Error> {
        check(unsafe { sys::kv_list_keys(bucket.as_ptr(), bucket.len(), prefix.as_ptr(), prefix.len(), limit) })?;
        let encoded = take_pending();
        crate::abi::Reader::new(&encoded)
            .strings()
            .map_err(|e| Error::Invalid(format!("the host returned a malformed key list: {}", e)))
    }

    /// Adds `delta` to the integer under `key` (a missing key counts as 0) and returns the new
    /// value, atomically: concurrent increments are never lost. Stored as decimal text.
    pub fn increment(bucket: &str, key: &str, delta: i64) -> Result<i64, Error> {
        check(unsafe { sys::kv_increment(bucket.as_ptr(), bucket.len(), key.as_ptr(), key.len(), delta) })?;
        let raw = take_pending();
        let mut value = [0u8; 8];
        if raw.len() != 8 {
            return Err(Error::Invalid(format!("the host returned {} bytes for an s64", raw.len())));
        }
        value.copy_from_slice(&raw);
        Ok(i64::from_le_bytes(value))
    }

    /// Sets `key` to `new` only if its value is `expected` now (`None`: only if the key is absent);
    /// whether it did. Atomic.
    pub fn compare_and_swap(bucket: &str, key: &str, expected: Option<&[u8]>, new: impl AsRef<[u8]>) -> Result<bool, Error> {
        let new = new.as_ref();
        let (has, old) = match expected {
            Some(old) => (1, old),
            None => (0, &[][..]),
        };
        let rc = check(unsafe {
            sys::kv_compare_and_swap(
                bucket.as_ptr(),
                bucket.len(),
                key.as_ptr(),
                key.len(),
                has,
                old.as_ptr(),
                old.len(),
                new.as_ptr(),
                new.len(),
            )
        })?;
        Ok(rc == 1)
    }

    /// Stores `value` under `key` for `ttl_ms` milliseconds; after that the key is gone.
    pub fn set_with_ttl(bucket: &str, key: &str, value: impl AsRef<[u8]>, ttl_ms: u64) -> Result<(), Error> {
        let value = value.as_ref();
        check(unsafe {
            sys::kv_set_with_ttl(bucket.as_ptr(), bucket.len(), key.as_ptr(), key.len(), value.as_ptr(), value.len(), ttl_ms)
        })?;
        Ok(())
    }

    /// The values of up to 1,000 keys, in the order asked (`None`: not set).
    pub fn get_many(bucket: &str, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut list = (keys.len() as u32).to_le_bytes().to_vec();
        for key in keys {
            list.extend_from_slice(&(key.len() as u32).to_le_bytes());
            list.extend_from_slice(key.as_bytes());
        }
        check(unsafe { sys::kv_get_many(bucket.as_ptr(), bucket.len(), list.as_ptr(), list.len()) })?;
        let encoded = take_pending();
        crate::abi::Reader::new(&encoded)
            .options()
            .map_err(|e| Error::Invalid(format!("the host returned a malformed value list: {}", e)))
    }

    /// Stores up to 1,000 entries in one transaction: all of them or, on an error, none.
    pub fn set_many(bucket: &str, entries: &[(&str, &[u8])]) -> Result<(), Error> {
        let mut list = (entries.len() as u32).to_le_bytes().to_vec();
        for (key, value) in entries {
            list.extend_from_slice(&(key.len() as u32).to_le_bytes());
            list.extend_from_slice(key.as_bytes());
            list.extend_from_slice(&(value.len() as u32).to_le_bytes());
            list.extend_from_slice(value);
        }
        check(unsafe { sys::kv_set_many(bucket.as_ptr(), bucket.len(), list.as_ptr(), list.len()) })?;
        Ok(())
    }
}

/// Durable queues granted in the manifest (`[grants] queues = ["name"]`).
pub mod queue {
    use super::{check, sys, take_pending, utf8, Error};

    /// Appends a message to `queue`; returns its id.
    pub fn publish(queue: &str, body: impl AsRef<[u8]>) -> Result<String, Error> {
        let body = body.as_ref();
        check(unsafe { sys::queue_publish(queue.as_ptr(), queue.len(), body.as_ptr(), body.len()) })?;
        utf8(take_pending(), "message id")
    }
}

/// Secrets set by an operator and granted in the manifest (`[grants] secrets = ["name"]`).
pub mod secrets {
    use super::{check, sys, take_pending, utf8, Error};

    /// The secret's value; [`Error::NotFound`] if it is granted but not set.
    pub fn get(name: &str) -> Result<String, Error> {
        check(unsafe { sys::secrets_get(name.as_ptr(), name.len()) })?;
        utf8(take_pending(), "secret")
    }
}

/// Log lines, recorded with the invocation (stdout and stderr are captured too).
pub mod log {
    use super::sys;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Level {
        Debug = 0,
        Info = 1,
        Warn = 2,
        Error = 3,
    }

    pub fn write(level: Level, message: &str) {
        unsafe { sys::log_write(level as i32, message.as_ptr(), message.len()) }
    }

    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }

    pub fn info(message: &str) {
        write(Level::Info, message)
    }

    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }

    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// Outbound HTTP to the origins granted in the manifest (`[grants] http = ["https://api.example.com"]`).
///
/// An HTTP error status (404, 500...) is a [`http::Response`]; an [`Error`] means there is no
/// response: `Denied` (origin not granted, or an address the host refuses), `Timeout`,
/// `TooLarge`, `LimitExceeded`, `Invalid`, `Unavailable` (DNS, connect, TLS...).
pub mod http {
    use super::{check, sys, take_pending, Error};

    /// The final response (after redirects).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Response {
        pub status: u16,
        /// Lower-case names, in the order received; a name may repeat.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        /// The first value of header `name` (any case).
        pub fn header(&self, name: &str) -> Option<&str> {
            let name = name.to_ascii_lowercase();
            self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
        }

        /// The body as text (invalid UTF-8 replaced).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        /// The body parsed as JSON.
        pub fn json(&self) -> Result<crate::json::Value, String> {
            crate::json::parse(&self.body)
        }
    }

    /// Sends `method url` with `headers` and `body`; `timeout_ms` bounds the whole exchange
    /// (`None`: the host's default), never past the invocation's deadline.
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: Option<u32>,
    ) -> Result<Response, Error> {
        let mut list = (headers.len() as u32).to_le_bytes().to_vec();
        for (name, value) in headers {
            for item in [name, value] {
                list.extend_from_slice(&(item.len() as u32).to_le_bytes());
                list.extend_from_slice(item.as_bytes());
            }
        }
        check(unsafe {
            sys::outbound_http_request(
                method.as_ptr(),
                method.len(),
                url.as_ptr(),
                url.len(),
                list.as_ptr(),
                list.len(),
                body.as_ptr(),
                body.len(),
                timeout_ms.is_some() as i32,
                timeout_ms.unwrap_or(0),
            )
        })?;
        let encoded = take_pending();
        let (status, headers, body) = crate::abi::Reader::new(&encoded)
            .outbound_response()
            .map_err(|e| Error::Invalid(format!("the host returned a malformed response: {}", e)))?;
        Ok(Response { status, headers, body })
    }

    pub fn get(url: &str) -> Result<Response, Error> {
        request("GET", url, &[], &[], None)
    }

    pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response, Error> {
        request("POST", url, &[("content-type", content_type)], body, None)
    }
}
