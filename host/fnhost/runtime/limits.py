"""A store's limits, and how a run that hit one is told apart from other failures.

`new_store` applies every per-invocation limit (memory/table/instance caps, WASI with only the
manifest's env and captured stdio); fuel and the epoch deadline are set per call by the sandbox.
`classify` maps a trap to its outcome; `refine` reads what only the logs and the call state show
(an allocator's out-of-memory message, a denied grant).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wasmtime

from ..capabilities.base import CallState
from ..capabilities.body import GUEST_DIR
from ..capabilities.state import OutputSink
from .capi import StoreContext
from .outcomes import Outcome, RunResult
from .wasi_poll import DEADLINE_TRAP_PREFIX

if TYPE_CHECKING:
    from .core_call import CoreExports
    from .prepare import Prepared

WASM_PAGE = 65536
# What language runtimes print on stderr when an allocation fails (Rust's std, Go's runtime).
OOM_MARKERS = ("memory allocation of ", "fatal error: out of memory", "runtime: out of memory")


class Stdio:
    """Where a store's stdout/stderr go. Wasmtime calls the callbacks from its own I/O threads, so
    the target is held here (per store, swapped per invocation) rather than in a thread-local.
    stdout feeds the invocation's `OutputSink` first, when the guest announced one
    (capabilities/body.py); what is left of a write is a log line, bounded like any other.

    A store that may move a large output has its stdout on a `StdoutPipe` instead of a callback:
    then `sync` reads what the guest has written so far: before the output is taken, when the call
    ends, and before any other log line (`LogBuffer.before_line`, stderr's included), so that lines
    keep their order."""

    def __init__(self) -> None:
        self.state: CallState | None = None
        self._lock = threading.Lock()
        self.pipe: StdoutPipe | None = None

    def sync(self) -> None:
        if self.pipe is not None:
            self.pipe.drain()

    def stdout(self, data: bytes) -> None:
        with self._lock:
            state = self.state
            if state is None:
                return
            if isinstance(state.output, OutputSink):
                data = state.output.feed(data)
                if not data:
                    return
            state.logs.stream("stdout", data)

    def stderr(self, data: bytes) -> None:
        with self._lock:
            if self.state is not None:
                self.state.logs.stream("stderr", data)

    def attach(self, state: CallState | None) -> None:
        with self._lock:
            self.state = state


class StdoutPipe:
    """A store's stdout as a FIFO that one host thread reads in large reads (`Stdio.stdout` gets
    them), instead of a callback into Python for each write of at most 8 KiB from Wasmtime's I/O
    threads: a 1 MB echo costs about a third less (docs/performance.md). Nothing is stored: the
    FIFO's path is unlinked once both ends are open, and the pipe holds at most `PIPE_BYTES`, so a
    guest that writes without end is held to what `Stdio.stdout` keeps (the announced output, then
    log lines within their cap) while it waits on a full pipe or its deadline. The thread ends when
    the store is dropped (the write end closes)."""

    PIPE_BYTES = 1 << 20

    def __init__(self, stdio: Stdio) -> None:
        directory = tempfile.mkdtemp(prefix="fnhost-stdout-", dir=INPUT_ROOT)
        self.path = os.path.join(directory, "stdout")
        os.mkfifo(self.path, 0o600)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # first: then a writer never waits
        with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size: the default 64 KiB
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, self.PIPE_BYTES)
        self._stdio = stdio
        self._lock = threading.RLock()
        self._draining = False
        self._closed = False

    def opened(self) -> None:
        """Wasmtime holds the write end now: the path goes, and the reading starts."""
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)
        threading.Thread(target=self._run, name="fnhost-stdout", daemon=True).start()

    def abandon(self) -> None:
        """Wasmtime could not open the write end: nothing reads."""
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)
        self._close()

    def drain(self) -> None:
        """Read what has been written so far (a write the guest finished is in the pipe: all of it)."""
        with self._lock:
            if self._draining or self._closed:  # a log line made while draining: already in order
                return
            self._draining = True
            try:
                while True:
                    try:
                        data = os.read(self._fd, self.PIPE_BYTES)
                    except BlockingIOError:
                        return
                    if not data:  # every writer closed: the store is gone
                        self._close()
                        return
                    self._stdio.stdout(data)
            finally:
                self._draining = False

    def _close(self) -> None:
        self._closed = True
        os.close(self._fd)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while True:
            poller.poll()  # readable, or the write end closed (POLLHUP)
            self.drain()
            with self._lock:
                if self._closed:
                    return


@dataclass
class Instance:
    """A store and (once instantiated) its instance; kept between calls with `instance_reuse`."""

    store: wasmtime.Store
    context: StoreContext  # the store's per-call limits (fuel, epoch deadline), through capi.py
    stdio: Stdio
    instance: Any = None
    exports: CoreExports | None = None  # core modules: the instance's exports, looked up once
    wasi_clock_origin_ns: int = 0  # Wasmtime counts the guest's monotonic clock from the WASI context
    uses: int = 0
    # a store that may move a large body (runtime/sandbox.py): preopened read-only at
    # capabilities.body.GUEST_DIR, emptied after every call, removed with the store
    input_dir: str | None = None


def new_store(
    engine: wasmtime.Engine, prepared: Prepared, input_dir: bool = False, stdout_pipe: bool = False
) -> Instance:
    """A store with the version's limits; `input_dir`: with a directory for large inputs;
    `stdout_pipe`: stdout on a `StdoutPipe` (for large outputs)."""
    store = wasmtime.Store(engine)
    stdio = Stdio()
    origin = time.monotonic_ns()
    store.set_limits(
        memory_size=prepared.limits.memory_mb * 2**20,
        table_elements=1_000_000,
        instances=64,
        tables=64,
        memories=16,
    )
    wasi = wasmtime.WasiConfig()
    wasi.argv = [prepared.name]
    wasi.env = prepared.env
    wasi.stderr_custom = stdio.stderr
    if stdout_pipe:
        pipe = StdoutPipe(stdio)
        try:
            wasi.stdout_file = pipe.path
        except BaseException:
            pipe.abandon()
            raise
        pipe.opened()
        stdio.pipe = pipe
    else:
        wasi.stdout_custom = stdio.stdout
    directory = None
    if input_dir:
        directory = tempfile.mkdtemp(prefix="fnhost-input-", dir=INPUT_ROOT)
        wasi.preopen_dir(directory, GUEST_DIR, fs_mutable=False)
    store.set_wasi(wasi)
    instance = Instance(store, StoreContext(store), stdio, wasi_clock_origin_ns=origin, input_dir=directory)
    if directory is not None:
        weakref.finalize(instance, shutil.rmtree, directory, ignore_errors=True)
    return instance


# Large inputs are written where reading them back costs no disk I/O, when the machine has such a place.
INPUT_ROOT = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def trap_summary(e: BaseException) -> str:
    """The cause of a trap plus its innermost frames: "wasm `unreachable` ... (at 0: 0xda - f)"."""
    text = str(e).strip()
    head, _, cause = text.partition("Caused by:")
    cause = " ".join(cause.split()) or first_line(e)
    cause = cause.removeprefix("wasm trap: ")
    frames = [" ".join(line.split()) for line in head.splitlines()[1:4] if line.strip()]
    return f"{cause} (backtrace: {'; '.join(frames)})" if frames else cause


def core_memory_size(warm: Instance | None) -> int | None:
    """A core instance's memory now (None: no core instance yet)."""
    if warm is None or warm.exports is None:
        return None
    return warm.exports.memory.refresh()


def classify(prepared: Prepared, warm: Instance | None, e: Exception) -> RunResult:
    limits = prepared.limits
    code = getattr(e, "trap_code", None)
    text = str(e)
    summary = trap_summary(e)
    if code is None:  # component calls report traps as WasmtimeError: read the cause instead
        if summary.startswith("interrupt"):
            code = wasmtime.TrapCode.INTERRUPT
        elif summary.startswith("call stack exhausted"):
            code = wasmtime.TrapCode.STACK_OVERFLOW
    if code is wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in text:
        return RunResult(Outcome.FUEL_EXHAUSTED, error=f"CPU budget of {limits.fuel} fuel exhausted (limits.fuel)")
    if code is wasmtime.TrapCode.INTERRUPT or DEADLINE_TRAP_PREFIX in text:
        return RunResult(Outcome.TIMEOUT, error=f"timed out after {limits.timeout_ms} ms (limits.timeout_ms)")
    memory_error = RunResult(
        Outcome.MEMORY_LIMIT,
        error=f"memory limit of {limits.memory_mb} MiB reached (limits.memory_mb): {summary}",
    )
    if code is None and "memory" in text and ("limit" in text or "exceed" in text):
        return memory_error  # instantiation needs more memory than the cap
    size = core_memory_size(warm)
    if size is not None and size + WASM_PAGE > limits.memory_mb * 2**20:
        return memory_error
    if code is wasmtime.TrapCode.STACK_OVERFLOW:
        return RunResult(Outcome.GUEST_TRAP, error=f"stack overflow: {summary}")
    return RunResult(Outcome.GUEST_TRAP, error=summary)


def refine(prepared: Prepared, result: RunResult, state: CallState) -> None:
    """What the outcome becomes once the logs and the call state are known."""
    limits = prepared.limits
    if result.outcome is Outcome.GUEST_TRAP and any(m in line for line in state.logs.lines for m in OOM_MARKERS):
        # a single large allocation refused by the cap traps at low memory: the runtime's own
        # out-of-memory message on stderr tells it apart from other aborts
        result.outcome = Outcome.MEMORY_LIMIT
        result.error = f"memory limit of {limits.memory_mb} MiB reached (limits.memory_mb): {result.error}"
    if result.outcome is Outcome.GUEST_ERROR and (result.error or "").startswith("MemoryError"):
        result.outcome = Outcome.MEMORY_LIMIT
        result.error = f"memory limit of {limits.memory_mb} MiB reached ({result.error})"
    if state.denied and result.outcome in (Outcome.GUEST_ERROR, Outcome.GUEST_TRAP):
        result.outcome = Outcome.DENIED
        result.error = f"{state.denied[0]} (the function failed after: {result.error})"
    elif state.chain_stopped and result.outcome in (Outcome.GUEST_ERROR, Outcome.GUEST_TRAP):
        result.error = f"{state.chain_stopped[0]} (the function failed after: {result.error})"
