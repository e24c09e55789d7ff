//! Write fnhost functions in Rust.
//!
//! This crate implements the fnhost core-module ABI (`docs/abi.md`) so that a function never
//! touches a pointer: it receives a [`Context`] and a [`Request`] or an [`Event`], returns a
//! [`Response`] or an [`EventResult`], and reaches the host through [`kv`], [`queue`],
//! [`secrets`], [`log`] and [`http`]. It has no dependencies and builds with rustc 1.63 for `wasm32-wasi`.
//!
//! ```ignore
//! fn http(ctx: &fnhost::Context, req: fnhost::Request) -> Result<fnhost::Response, String> {
//!     Ok(fnhost::Response::text(format!("hello from {}", ctx.function_name)))
//! }
//! fnhost::export!(http = http);
//! ```

mod abi;
mod host;
pub mod json;
mod types;

pub use host::{http, kv, log, queue, secrets, Error};
pub use types::{Context, Event, EventResult, Message, Request, Response};

/// Implementation details used by [`export!`]; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::{alloc, run_event, run_http};
}

/// Exports the handlers of a function: `fnhost::export!(http = my_http, event = my_event);`
///
/// Either handler may be left out; the host answers a missing one with a `GuestError`. It also
/// exports `fnhost_alloc`, which the host uses to hand input to the guest.
///
/// * `http`: `fn(&Context, Request) -> Result<Response, E>` with `E: Display`.
/// * `event`: `fn(&Context, Event) -> Result<R, E>` with `R: Into<EventResult>` (`Vec<u8>`,
///   `String`, `&str` or an [`EventResult`]) and `E: Display`.
///
/// An `Err` is a failure reported by the function (outcome `GuestError`, message `E`'s text).
#[macro_export]
macro_rules! export {
    ($($kind:ident = $handler:path),+ $(,)?) => {
        #[no_mangle]
        pub extern "C" fn fnhost_alloc(size: i32) -> i32 {
            $crate::__private::alloc(size)
        }
        $($crate::export!(@one $kind = $handler);)+
    };
    (@one http = $handler:path) => {
        #[no_mangle]
        pub extern "C" fn fnhost_handle_http(ptr: i32, len: i32) -> i64 {
            $crate::__private::run_http(ptr, len, $handler)
        }
    };
    (@one event = $handler:path) => {
        #[no_mangle]
        pub extern "C" fn fnhost_handle_event(ptr: i32, len: i32) -> i64 {
            $crate::__private::run_event(ptr, len, $handler)
        }
    };
    (@one $other:ident = $handler:path) => {
        compile_error!(concat!(
            "fnhost::export!: unknown handler kind `", stringify!($other), "` (expected `http` or `event`)"
        ));
    };
}
