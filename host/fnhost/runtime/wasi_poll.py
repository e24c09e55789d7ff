"""WASI preview-1 `poll_oneoff` for core modules, cut short by the invocation's deadline.

Epoch interruption only fires while wasm code runs. A guest blocked in the built-in `poll_oneoff`
(`sleep()` in Rust, Go or C) sits in a host call, so it would keep its worker thread past
`limits.timeout_ms`. `link_interruptible_poll` shadows that one import with the same semantics
written here, which sleeps in short slices and traps once the deadline passes.

Layouts (WASI preview-1 witx, `typenames.witx`): a `subscription` is 48 bytes — userdata u64 @0,
tag u8 @8 (0 clock, 1 fd_read, 2 fd_write), then for a clock: id u32 @16, timeout u64 @24,
precision u64 @32, flags u16 @40 (bit 0: absolute); for an fd: fd u32 @16. An `event` is 32
bytes — userdata u64 @0, errno u16 @8, type u8 @10, nbytes u64 @16, flags u16 @24.

Where it differs from Wasmtime's built-in, on purpose: a subscription on an fd other than
stdin (read) / stdout, stderr (write) gives an event with errno EBADF, not EBADF for the whole
call (a Go guest's netpoll throws on the latter); stdin, which fnhost leaves empty, reports
nbytes 0 with the hangup flag; a pointer outside guest memory returns EFAULT instead of
trapping; pointers need not be aligned; an absolute monotonic clock needs the hook's
`monotonic_origin_of` (else ENOTSUP). Everything else — which events are ready, the bytes each
event writes (padding left untouched), `nevents`, EINVAL for zero subscriptions, an unknown clock
or an unknown tag — matches it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import wasmtime

from ..capabilities.base import GuestMemory, HostCallError

DEADLINE_TRAP_PREFIX = "fnhost: deadline"
DEADLINE_TRAP = f"{DEADLINE_TRAP_PREFIX} reached while the guest was waiting (poll_oneoff)"

# Re-read the deadline at least this often while asleep, so a deadline moved earlier (say, by a
# host draining its workers) still ends the wait within one slice.
SLEEP_SLICE_S = 0.05
# A guest can pass a million subscriptions (~1.5 µs of host time each) in one call, which epoch
# interruption cannot stop either: look at the deadline every 2**14 of them.
_WORK_CHECK_MASK = 2**14 - 1

_ESUCCESS, _EBADF, _EFAULT, _EINVAL, _ENOTSUP = 0, 8, 21, 28, 58
_CLOCK, _FD_READ, _FD_WRITE = 0, 1, 2
_REALTIME, _MONOTONIC = 0, 1
_ABSTIME = 0x1
_HANGUP = 0x1

_SUBSCRIPTION = struct.Struct("<QB7xI4xQ8xH6x")  # userdata, tag, clock id | fd, timeout, flags
_EVENT_HEAD = struct.Struct("<QHB")  # userdata, errno, type
_EVENT_RW = struct.Struct("<QH")  # nbytes, flags (at +16)
_EVENT_SIZE = 32

# (subscription tag, fd) that is ready at once -> the event's (nbytes, flags)
_STDIO = {
    (_FD_READ, 0): (0, _HANGUP),  # stdin is empty: a read returns end of file at once
    (_FD_WRITE, 1): (1, 0),
    (_FD_WRITE, 2): (1, 0),
}


def link_interruptible_poll(
    linker: wasmtime.Linker,
    deadline_of: Callable[[], float],
    monotonic_origin_of: Callable[[], int] | None = None,
) -> None:
    """Shadow `wasi_snapshot_preview1.poll_oneoff` in `linker` (after `define_wasi()`), leaving
    `linker.allow_shadowing` off afterwards.

    `deadline_of()` returns the running invocation's deadline as a `time.monotonic()` value
    (`math.inf` for none). It is called from the thread running the guest only when the guest
    waits (every `SLEEP_SLICE_S` while it waits) or passes more than 2**14 subscriptions. Once
    the deadline has passed, the call raises `wasmtime.Trap(DEADLINE_TRAP)`, whose message starts
    with `DEADLINE_TRAP_PREFIX`.

    `monotonic_origin_of()` returns, in `time.monotonic_ns()`, when the running store's
    `wasmtime.WasiConfig` was created: Wasmtime counts the guest's monotonic clock from there, and
    an absolute monotonic timeout is a reading of that clock. Without it such a subscription gets
    ENOTSUP (relative clocks and the realtime clock need nothing).
    """
    i32 = wasmtime.ValType.i32()

    def poll_oneoff(caller: wasmtime.Caller, in_ptr: int, out_ptr: int, nsubscriptions: int, nevents_ptr: int) -> int:
        try:
            memory = GuestMemory(caller)
        except HostCallError:
            return _EFAULT
        n = nsubscriptions & 0xFFFFFFFF
        return _poll(memory, in_ptr, out_ptr, n, nevents_ptr, deadline_of, monotonic_origin_of)

    linker.allow_shadowing = True
    try:
        linker.define_func(
            "wasi_snapshot_preview1",
            "poll_oneoff",
            wasmtime.FuncType([i32, i32, i32, i32], [i32]),
            poll_oneoff,
            access_caller=True,
        )
    finally:
        linker.allow_shadowing = False  # Wasmtime's default; wasmtime-py cannot read the old value


def _poll(
    memory: GuestMemory,
    in_ptr: int,
    out_ptr: int,
    n: int,
    nevents_ptr: int,
    deadline_of: Callable[[], float],
    monotonic_origin_of: Callable[[], int] | None,
) -> int:
    if n == 0:
        return _EINVAL  # preview 1 has no way to sleep forever
    in_ptr &= 0xFFFFFFFF
    out_ptr &= 0xFFFFFFFF
    nevents_ptr &= 0xFFFFFFFF
    if (
        in_ptr + n * _SUBSCRIPTION.size > memory.size
        or out_ptr + n * _EVENT_SIZE > memory.size
        or nevents_ptr + 4 > memory.size
    ):
        return _EFAULT

    start = time.monotonic()
    raw = memory.read(in_ptr, n * _SUBSCRIPTION.size)
    # Per subscription: when its clock is due (monotonic seconds), or None for an fd event.
    due: list[float | None] = []
    waits = True
    for i, (_, tag, ident, timeout, flags) in enumerate(_SUBSCRIPTION.iter_unpack(raw)):
        if i & _WORK_CHECK_MASK == _WORK_CHECK_MASK:
            _check_deadline(deadline_of)
        if tag != _CLOCK:
            if tag not in (_FD_READ, _FD_WRITE):
                return _EINVAL
            due.append(None)
            waits = False  # fd events (ready, or EBADF) are reported at once
            continue
        if ident not in (_REALTIME, _MONOTONIC):
            return _EINVAL  # as Wasmtime: the CPU-time clocks cannot be waited on
        if not flags & _ABSTIME:
            due.append(start + timeout / 1e9)
        elif ident == _REALTIME:
            due.append(start + (timeout - time.time_ns()) / 1e9)
        elif monotonic_origin_of is None:
            return _ENOTSUP
        else:
            due.append((monotonic_origin_of() + timeout) / 1e9)

    if waits:
        _sleep_until(min(d for d in due if d is not None), deadline_of)
    now = time.monotonic()

    count = 0
    for i, ((userdata, tag, ident, _, _), when) in enumerate(zip(_SUBSCRIPTION.iter_unpack(raw), due, strict=True)):
        if i & _WORK_CHECK_MASK == _WORK_CHECK_MASK:
            _check_deadline(deadline_of)
        event = out_ptr + count * _EVENT_SIZE
        if when is None:
            ready = _STDIO.get((tag, ident))
            errno, (nbytes, rw_flags) = (_ESUCCESS, ready) if ready else (_EBADF, (0, 0))
            memory.write(event, _EVENT_HEAD.pack(userdata, errno, tag))
            memory.write(event + 16, _EVENT_RW.pack(nbytes, rw_flags))
        elif when <= now:
            memory.write(event, _EVENT_HEAD.pack(userdata, _ESUCCESS, _CLOCK))
            memory.write(event + 16, _EVENT_RW.pack(0, 0))
        else:
            continue
        count += 1
    memory.write(nevents_ptr, count.to_bytes(4, "little"))
    return _ESUCCESS


def _check_deadline(deadline_of: Callable[[], float]) -> None:
    if deadline_of() <= time.monotonic():
        raise wasmtime.Trap(DEADLINE_TRAP)


def _sleep_until(due: float, deadline_of: Callable[[], float]) -> None:
    """Sleep until `due` (monotonic seconds), or trap once the invocation's deadline passes first."""
    while True:
        now = time.monotonic()
        if due <= now:
            return
        deadline = deadline_of()
        if deadline <= now:
            raise wasmtime.Trap(DEADLINE_TRAP)
        time.sleep(min(due, deadline, now + SLEEP_SLICE_S) - now)


__all__ = ["DEADLINE_TRAP", "DEADLINE_TRAP_PREFIX", "SLEEP_SLICE_S", "link_interruptible_poll"]
