"""Tiny core-module guests written in WAT, for testing the sandbox without a guest toolchain.

Each follows docs/abi.md: `memory`, a bump `fnhost_alloc`, and `fnhost_handle_event` /
`fnhost_handle_http` whose bodies are given per guest.
"""

from __future__ import annotations

import struct

import wasmtime

PRELUDE = """
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 1024))
  (func $alloc (export "fnhost_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1)))
                        (i32.const -1)) (then (return (i32.const 0))))))
    (local.get $p))
  ;; output = [0] [u32 len] [input] [u32 0]: an event result whose output is the raw input
  (func $echo_input (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 9))))
    (i32.store8 (local.get $out) (i32.const 0))
    (i32.store (i32.add (local.get $out) (i32.const 1)) (local.get $len))
    (memory.copy (i32.add (local.get $out) (i32.const 5)) (local.get $ptr) (local.get $len))
    (i32.store (i32.add (i32.add (local.get $out) (i32.const 5)) (local.get $len)) (i32.const 0))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 9)))))
"""


FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))'


def module(body: str, imports: str = "") -> bytes:
    return wasmtime.wat2wasm(f"(module {imports} {PRELUDE} {body})")


ECHO = module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (call $echo_input (local.get 0) (local.get 1)))
""")

LOOP = module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (loop $l (br $l)) (i64.const 0))
""")


def after_first_call(misbehaviour: str) -> bytes:
    """Echoes on an instance's first call; every later call of the same (warm) instance runs
    `misbehaviour` first: a warm instance must meet the limits a fresh one does."""
    return module(f"""
  (global $calls (mut i32) (i32.const 0))
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.gt_u (global.get $calls) (i32.const 1)) (then {misbehaviour}))
    (call $echo_input (local.get 0) (local.get 1)))
""")


SPIN = "(loop $l (br $l))"
GROW_UNTIL_REFUSED = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable"

# Grows memory a page at a time until the host refuses, then traps (as an allocator would abort).
MEMORY_BOMB = module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
""")

RECURSE = module("""
  (func $r (param i64) (result i64) (i64.add (call $r (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "fnhost_handle_event") (param i32 i32) (result i64) (call $r (i64.const 0)))
""")

TRAP = module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64) unreachable)
""")

# Guest-reported failure: tag 1 + message "boom".
FAILS = module("""
  (data (i32.const 16) "\\01boom")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 5)))
""")

# Writes 64 KiB to stdout 64 times (4 MiB in all) through WASI fd_write, then echoes.
STDOUT_FLOOD = module(
    """
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $i i32)
    (i32.store (i32.const 100) (i32.const 4096))   ;; iovec.buf
    (i32.store (i32.const 104) (i32.const 65536))  ;; iovec.len
    (memory.fill (i32.const 4096) (i32.const 65) (i32.const 65536))
    (i32.store8 (i32.const 69631) (i32.const 10))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 64))))
    (call $echo_input (local.get 0) (local.get 1)))
""",
    imports=FD_WRITE,
)

# What Rust's std does when an allocation is refused: a message on stderr, then abort.
OOM_ABORT = module(
    """
  (data (i32.const 300) "memory allocation of 209715200 bytes failed\\n")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (i32.store (i32.const 100) (i32.const 300))
    (i32.store (i32.const 104) (i32.const 44))
    (drop (call $fd_write (i32.const 2) (i32.const 100) (i32.const 1) (i32.const 200)))
    unreachable)
""",
    imports=FD_WRITE,
)

def http_status(status: int) -> bytes:
    """An HTTP handler answering `status` with no headers and an empty body."""
    lo, hi = status & 0xFF, status >> 8
    return module(f"""
  (data (i32.const 16) "\\00\\{lo:02x}\\{hi:02x}\\00\\00\\00\\00\\00\\00\\00\\00")
  (func (export "fnhost_handle_http") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 11)))
""")


def http_answer(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """An HTTP handler answering `status` with `headers` and `body` (its output, encoded here: docs/abi.md)."""

    def field(data: bytes) -> bytes:
        return struct.pack("<I", len(data)) + data

    out = b"\x00" + struct.pack("<HI", status, len(headers))
    out += b"".join(field(k.encode()) + field(v.encode()) for k, v in headers) + field(body)
    data = "".join(f"\\{b:02x}" for b in out)
    return module(f"""
  (data (i32.const 16) "{data}")
  (func (export "fnhost_handle_http") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const {len(out)})))
""")


# Status 1000: not a status a server can send.
BAD_STATUS = http_status(1000)

# Calls log_write 1000 times with "hi" (a host-call budget test).
LOG_LOOP = module(
    """
  (data (i32.const 16) "hi")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $i i32)
    (loop $l
      (call $log (i32.const 1) (i32.const 16) (i32.const 2))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $echo_input (local.get 0) (local.get 1)))
""",
    imports='(import "fnhost" "log_write" (func $log (param i32 i32 i32)))',
)

def kv_get(first: str = "") -> bytes:
    """kv_get on bucket "b" key "k" (bytes at 16 and 17): returns [0][u32 8][i64 status] [u32 0].
    `first`: instructions the handler runs before (its params are 0 and 1, the input's pointer and length)."""
    return module(
        f"""
  (data (i32.const 16) "bk")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $r i64)
    {first}
    (local.set $r (call $kv_get (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 1)))
    (i32.store8 (i32.const 32) (i32.const 0))
    (i32.store (i32.const 33) (i32.const 8))
    (i64.store (i32.const 37) (local.get $r))
    (i32.store (i32.const 45) (i32.const 0))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 17)))
""",
        imports='(import "fnhost" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i64)))',
    )


KV_GET = kv_get()


NO_ALLOC = wasmtime.wat2wasm(
    '(module (memory (export "memory") 1) (func (export "fnhost_handle_event") (param i32 i32) (result i64) (i64.const 0)))'
)

UNKNOWN_IMPORT = module(
    """(func (export "fnhost_handle_event") (param i32 i32) (result i64) (call $x) (i64.const 0))""",
    imports='(import "env" "open_socket" (func $x))',
)

# An invoke's payload (found past the context, docs/abi.md) logged as one info line and returned as the
# output: log lines and output a test chooses.
LOG_PAYLOAD = module(
    """
  (func $skip (param $p i32) (result i32) (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
  (func (export "fnhost_handle_event") (param $ptr i32) (param $len i32) (result i64)
    (local $p i32)
    (local.set $p (call $skip (call $skip (call $skip (local.get $ptr)))))  ;; id, function name, version
    (local.set $p (i32.add (local.get $p) (i32.const 13)))                 ;; deadline u64, memory u32, kind u8
    (call $log (i32.const 1) (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p)))
    (call $echo_input (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
""",
    imports='(import "fnhost" "log_write" (func $log (param i32 i32 i32)))',
)


# Guests that cause what they are triggered by, for the chain-depth tests (fnhost.chains). Each answers
# a host error as a failure ([1] + its message, the pending result) and success as an empty event result.
_CAUSE_IMPORTS = """
  (import "fnhost@0.2.0" "result_len" (func $result_len (result i32)))
  (import "fnhost@0.2.0" "result_read" (func $result_read (param i32) (result i32)))
"""
_CAUSE_HELPERS = """
  (func $fail (result i64)
    (local $n i32) (local $out i32)
    (local.set $n (call $result_len))
    (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 1))))
    (i32.store8 (local.get $out) (i32.const 1))
    (drop (call $result_read (i32.add (local.get $out) (i32.const 1))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $n) (i32.const 1)))))
  ;; 9 zero bytes at 900: [0] [u32 0 output] [u32 0 failed ids]
  (func $ok (result i64) (i64.or (i64.shl (i64.const 900) (i64.const 32)) (i64.const 9)))
"""


def _data(offset: int, text: str) -> str:
    raw = text.encode()
    assert offset + len(raw) <= 900
    escaped = "".join(f"\\{b:02x}" for b in raw)
    return f'(data (i32.const {offset}) "{escaped}")'


def publishes_to(queue: str) -> bytes:
    """On any event: publish "ping" to `queue`."""
    return module(
        f"""
  {_data(16, queue)} {_data(400, "ping")}
  {_CAUSE_HELPERS}
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (if (i64.lt_s (call $publish (i32.const 16) (i32.const {len(queue.encode())}) (i32.const 400) (i32.const 4))
                  (i64.const 0))
      (then (return (call $fail))))
    (call $ok))
""",
        imports=_CAUSE_IMPORTS
        + '(import "fnhost@0.2.0" "queue_publish" (func $publish (param i32 i32 i32 i32) (result i64)))',
    )


def writes_blob(bucket: str, key: str) -> bytes:
    """On any event: put "hi" at `bucket/key`."""
    b, k = len(bucket.encode()), len(key.encode())
    return module(
        f"""
  {_data(16, bucket)} {_data(200, key)} {_data(400, "text/plain")} {_data(450, "hi")}
  {_CAUSE_HELPERS}
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $r i64) (local $h i32)
    (local.set $r (call $open (i32.const 16) (i32.const {b}) (i32.const 200) (i32.const {k}) (i32.const 400)
                              (i32.const 10)))
    (if (i64.lt_s (local.get $r) (i64.const 0)) (then (return (call $fail))))
    (local.set $h (i32.wrap_i64 (local.get $r)))
    (if (i64.lt_s (call $write (local.get $h) (i32.const 450) (i32.const 2)) (i64.const 0))
      (then (return (call $fail))))
    (if (i64.lt_s (call $finish (local.get $h)) (i64.const 0)) (then (return (call $fail))))
    (call $ok))
""",
        imports=_CAUSE_IMPORTS
        + """
  (import "fnhost@0.2.0" "blobs_open_write" (func $open (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "fnhost@0.2.0" "blobs_write" (func $write (param i32 i32 i32) (result i64)))
  (import "fnhost@0.2.0" "blobs_finish" (func $finish (param i32) (result i64)))
""",
    )


def relays_to(url: str) -> bytes:
    """An HTTP handler that GETs `url` (no headers, no body) and answers with that response's status and,
    as its body, the whole outbound-response (status, headers, body: docs/abi.md); a host error is 500
    with its message."""
    n = len(url.encode())
    return module(
        f"""
  {_data(16, "GET")} {_data(64, url)}
  {_CAUSE_HELPERS}
  (func (export "fnhost_handle_http") (param i32 i32) (result i64)
    (local $r i64) (local $n i32) (local $out i32)
    ;; the empty header list: 4 zero bytes at 24
    (local.set $r (call $request (i32.const 16) (i32.const 3) (i32.const 64) (i32.const {n}) (i32.const 24)
                                 (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (local.set $n (call $result_len))
    (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 11))))
    (drop (call $result_read (i32.add (local.get $out) (i32.const 11))))
    (i32.store8 (local.get $out) (i32.const 0))
    (if (i64.lt_s (local.get $r) (i64.const 0))
      (then (i32.store16 (i32.add (local.get $out) (i32.const 1)) (i32.const 500)))
      (else (i32.store16 (i32.add (local.get $out) (i32.const 1))
                         (i32.load16_u (i32.add (local.get $out) (i32.const 11))))))
    (i32.store (i32.add (local.get $out) (i32.const 3)) (i32.const 0))
    (i32.store (i32.add (local.get $out) (i32.const 7)) (local.get $n))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $n) (i32.const 11)))))
""",
        imports=_CAUSE_IMPORTS
        + '(import "fnhost@0.2.0" "outbound_http_request" '
        "(func $request (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))",
    )
