//! Chaos: a test guest that misbehaves on command, to exercise the host's limits and sandbox.
//! The commands and outputs are those of guests/python/chaos; the invoke payload is one of:
//!
//!     ok           return "ok"
//!     loop         spin forever (fuel or the deadline stops it)
//!     spin:N       burn CPU for N loop iterations, then return {"spun":N}
//!     sleep:MS     sleep MS milliseconds of wall-clock time (the deadline stops it, not fuel)
//!     alloc:MB     allocate and touch MB MiB (4 KiB blocks); over the memory cap the allocation traps
//!     recurse      unbounded recursion: the wasm call stack overflows
//!     stdout:N     write N bytes to stdout
//!     trap         panic: a wasm `unreachable` trap
//!     exit:N       exit with status N
//!     raise        return an error: the function's failure (outcome GuestError)
//!     env          the environment as JSON: only the manifest's [env]

use std::io::Write;
use std::ptr;

use fnhost::json::{self, Value};
use fnhost::{Context, Event};

fn number(arg: &str) -> Result<u64, String> {
    arg.parse().map_err(|_| format!("{:?} is not a number", arg))
}

/// Never returns; the volatile access keeps the optimiser from assuming the loop ends.
fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        unsafe { ptr::write_volatile(&mut counter, counter.wrapping_add(1)) };
    }
}

#[allow(unconditional_recursion)] // on purpose: the `recurse` command overflows the stack
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    let below = recurse(unsafe { ptr::read_volatile(&frame[63]) } + 1);
    below + unsafe { ptr::read_volatile(&frame[0]) }
}

fn event(_ctx: &Context, event: Event) -> Result<String, String> {
    let payload = match event {
        Event::Invoke(payload) => payload,
        Event::QueueBatch(_) => return Ok(json::object([("ignored", "QueueBatch".into())]).to_string()),
        Event::Schedule { .. } => return Ok(json::object([("ignored", "Schedule".into())]).to_string()),
        Event::Blob { .. } => return Ok(json::object([("ignored", "BlobChange".into())]).to_string()),
    };
    let text = String::from_utf8_lossy(&payload);
    let (command, arg) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
    let out = match command {
        "ok" => return Ok("ok".to_string()),
        "loop" => spin_forever(),
        "spin" => {
            let n = number(arg)?;
            let mut total = 0u64;
            for i in 0..n {
                unsafe { ptr::write_volatile(&mut total, total.wrapping_add(i)) };
            }
            json::object([("spun", n.into())])
        }
        "sleep" => {
            let ms = number(arg)?;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            json::object([("slept_ms", ms.into())])
        }
        "alloc" => {
            // Page-sized blocks, as a growing workload would: the heap grows a page at a time, so
            // when the cap refuses a grow the memory is at the cap (the host reports MemoryLimit).
            let mb = number(arg)?;
            let mut blocks: Vec<Box<[u8]>> = Vec::with_capacity((mb as usize) * 256);
            for _ in 0..mb * 256 {
                let mut block = vec![0u8; 4096].into_boxed_slice();
                unsafe { ptr::write_volatile(&mut block[0], 1) }; // touch the page
                blocks.push(block);
            }
            json::object([("allocated_mb", mb.into())])
        }
        "recurse" => json::object([("depth", recurse(0).into())]),
        "stdout" => {
            let n = number(arg)? as usize;
            let mut stdout = std::io::stdout();
            stdout.write_all(&vec![b'x'; n]).and_then(|_| stdout.flush()).map_err(|e| e.to_string())?;
            json::object([("printed", n.into())])
        }
        "trap" => panic!("chaos: trap on purpose"),
        "exit" => std::process::exit(if arg.is_empty() { 1 } else { number(arg)? as i32 }),
        "raise" => return Err("chaos: raised on purpose".to_string()),
        "env" => Value::Object(std::env::vars().map(|(k, v)| (k, Value::from(v))).collect()),
        _ => return Err(format!("unknown chaos command {:?} (see guests/rust/chaos/src/lib.rs)", command)),
    };
    Ok(out.to_string())
}

fnhost::export!(event = event);
