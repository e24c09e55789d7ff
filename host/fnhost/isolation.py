"""Demoted functions run in a second process, so that what they do to a process cannot reach the others.

A demoted thread (`fnhost.guest_threads`) gets less of the cores, but it shares everything else with
the well-behaved functions: the process's memory map (a guest that maps and touches 200 MiB per
invocation makes every other invocation's instantiation and page faults wait on it), the GIL and
the allocator. So a host with isolation on runs a demoted function's invocations in one child
process (`_serve`), whole: its own `Host` over the same data dir or database,
at a lower CPU priority (nice `ISOLATED_NICE`), with no warm instances. The invoker keeps every
decision — admission, shares, pinned threads, deadlines, the invocation record — and waits for the
child's answer on a guest thread as it would for a guest (`GuestThreads.run`): a call the child
has not answered by the deadline is abandoned and pinned like any other.

The child starts at the first demotion, in the background; until it is ready, demoted calls run
here on demoted threads as before. If it dies (killed, out of memory), the calls it had get an
error outcome that says so, the host goes on, and the next demoted call starts a new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .egress import Exchange
    from .runtime.outcomes import RunResult

log = logging.getLogger("fnhost.isolation")

ISOLATED_NICE = 10
"""The child's nice value above the host's: while it contends for the cores, the host's own
invocations get about ten times its share (Linux CFS weights)."""
START_TIMEOUT_S = 120.0
"""How long the child may take to be ready (it imports Wasmtime and opens the stores)."""
SHORT_LIFE_S = 10.0
"""A child that ends sooner than this after it was ready delays the next start: the delay doubles
with each such child in a row (from 1 s, at most `MAX_RESTART_DELAY_S`), so that whatever keeps
ending it cannot make the host spend its cores on starting children."""
MAX_RESTART_DELAY_S = 60.0
MAX_OVERRUN_S = 30.0
"""How long past its deadline a call may keep the child busy (a guest blocked where Wasmtime cannot
interrupt it: a WASI preview-2 sleep). Then the child is killed, which frees every thread and byte
such guests held — and fails the other calls it was running — and a new one starts. In this
process a blocked guest's thread could only be waited for."""


class IsolationLost(Exception):
    """The child process ended before it answered."""


@dataclass
class Ran:
    """What the child hands back for one call: the run and what the invocation's state gathered."""

    run: RunResult
    logs: list[str] = field(default_factory=list)
    outbound: list[Exchange] = field(default_factory=list)
    chain_stopped: list[str] = field(default_factory=list)


class _Child:
    """One running child: its process, its end of the socket, and the callers waiting for answers."""

    def __init__(self, options: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a ^C to the server's terminal stops the server, which stops this
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._next = 0
        self.lost = False
        self.ready_at = 0.0  # time.monotonic() when it said it was ready
        self.lost_at = 0.0
        self.killed_for: str | None = None  # why this host killed it
        self.conn.send(options)

    def wait_ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            raise IsolationLost(f"the isolation process was not ready within {timeout_s:.0f} s")
        kind, detail = self.conn.recv()
        if kind != "ready":
            raise IsolationLost(f"the isolation process failed to start: {detail}")
        self.ready_at = time.monotonic()
        threading.Thread(target=self._read, name="fnhost-isolation-reader", daemon=True).start()

    def call(self, args: tuple[Any, ...], timeout_s: float) -> Ran:
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            if self.lost:
                raise IsolationLost("the isolation process has ended")
            self._next += 1
            call_id = self._next
            self._waiting[call_id] = (done, box)
        try:
            with self._send_lock:
                self.conn.send((call_id, args))
        except (OSError, EOFError, ValueError) as e:
            with self._lock:
                self._waiting.pop(call_id, None)
            raise IsolationLost(f"the isolation process cannot be reached ({e})") from None
        # The caller (a guest thread) is abandoned at the deadline; past MAX_OVERRUN_S more the child
        # is killed, and the reader answers every call it had.
        if not done.wait(timeout_s + MAX_OVERRUN_S):
            self.kill(f"a call was still blocked {MAX_OVERRUN_S:.0f} s past its {timeout_s:.3g} s timeout")
            done.wait()
        ok, value = box
        if not ok:
            raise value if isinstance(value, BaseException) else IsolationLost(str(value))
        return value  # type: ignore[no-any-return]

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as e:  # an answer that does not unpickle: the child is replaced
                self.killed_for = f"an answer could not be read ({type(e).__name__}: {e})"
                break
            with self._lock:
                entry = self._waiting.pop(call_id, None)
            if entry is not None:
                entry[1][:] = [ok, value]
                entry[0].set()
        try:
            code: int | None = self.process.wait(5)  # its end of the socket closed: it is exiting
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(OSError):
                self.process.kill()  # it cannot be reached any more: it must not go on running guests
        detail = "it closed its socket" if code is None else f"exit status {code}" if code >= 0 else f"signal {-code}"
        with self._lock:
            self.lost = True
            self.lost_at = time.monotonic()
            waiting, self._waiting = self._waiting, {}
        why = f"killed by the host: {self.killed_for}" if self.killed_for else detail
        lost = IsolationLost(
            f"the isolation process running demoted functions ended ({why}) before this invocation "
            "finished; it is restarted for the next one"
        )
        for done, box in waiting.values():
            box[:] = [False, lost]
            done.set()
        with contextlib.suppress(OSError):
            self.conn.close()

    def kill(self, why: str) -> None:
        with self._lock:
            if self.lost:
                return
            self.killed_for = why
        log.warning("killing the isolation process (pid %d): %s", self.process.pid, why)
        with contextlib.suppress(OSError):
            self.process.kill()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()  # the child sees the end of its input and exits
        with contextlib.suppress(OSError):
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Isolation:
    """The host's side: a child made on first use, calls sent to it, a lost child replaced."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options  # `Host` keyword arguments, data_dir included
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._starting = False
        self._closed = False
        self.started = 0  # children started, the first included (a restart after a loss adds one)
        self._short_lived = 0  # children in a row that ended within SHORT_LIFE_S (or failed to start)
        self._not_before = 0.0  # time.monotonic() before which no child starts

    def ready(self) -> bool:
        """Is a child up to take calls? If not, one is started in the background and the answer is
        no: the caller runs this call itself."""
        with self._lock:
            child = self._child
            if child is not None and not child.lost:
                return True
            if child is not None:  # it ended: count it once, and let go of it
                self._child = None
                self._backoff(short=child.lost_at - child.ready_at < SHORT_LIFE_S, since=child.lost_at)
            if self._starting or self._closed or time.monotonic() < self._not_before:
                return False
            self._starting = True
        threading.Thread(target=self._start, name="fnhost-isolation-start", daemon=True).start()
        return False

    def _backoff(self, *, short: bool, since: float) -> None:
        """A child ended (or failed to start, `short`): when may the next one start (under the lock)."""
        if not short:
            self._short_lived = 0
            self._not_before = since
            return
        self._not_before = since + min(MAX_RESTART_DELAY_S, 2.0**self._short_lived)
        self._short_lived += 1

    def _start(self) -> None:
        child = None
        try:
            child = _Child(self._options)
            child.wait_ready(START_TIMEOUT_S)
        except Exception as e:  # logged; demoted calls keep running on this process's demoted threads
            log.warning("demoted functions stay in this process: %s", e)
            if child is not None:
                child.stop()
            child = None
        with self._lock:
            self._starting = False
            if child is None:
                self._backoff(short=True, since=time.monotonic())
            elif self._closed:
                child.stop()
            else:
                self._child = child
                self.started += 1

    def run(self, args: tuple[Any, ...], timeout_s: float) -> Ran:
        """Run `Invoker.run_here(*args)` in the child; `IsolationLost` if it ends first (it is killed
        when the call is still running `MAX_OVERRUN_S` past `timeout_s`)."""
        with self._lock:
            child = self._child
        if child is None:
            raise IsolationLost("the isolation process is not running")
        return child.call(args, timeout_s)

    @property
    def pid(self) -> int | None:
        with self._lock:
            child = self._child
        return child.process.pid if child is not None and not child.lost else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            child.stop()


def _serve(fd: int) -> None:
    """The child: a `Host` from the options it is sent, then one thread per call until its input ends."""
    conn = Connection(fd)
    options = conn.recv()
    from .host import Host

    try:
        host = Host(**options)
    except Exception as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    send_lock = threading.Lock()

    def answer(call_id: int, args: tuple[Any, ...]) -> None:
        try:
            reply: tuple[int, bool, Any] = (call_id, True, host.run_here(*args))
        except Exception as e:
            reply = (call_id, False, IsolationLost(f"the isolation process could not run it: {type(e).__name__}: {e}"))
        with send_lock:
            try:
                conn.send(reply)  # pickled whole before anything is written
            except (OSError, ValueError):  # the host is gone
                pass
            except Exception as e:
                error = IsolationLost(f"the isolation process could not send its answer: {type(e).__name__}: {e}")
                with contextlib.suppress(OSError, ValueError):
                    conn.send((call_id, False, error))

    # lowered once started at full speed; the threads made from here on (the calls') inherit it
    with contextlib.suppress(OSError, AttributeError):
        os.nice(ISOLATED_NICE)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            call_id, args = conn.recv()
        except (EOFError, OSError):
            break  # the host closed its end, or is gone
        threading.Thread(target=answer, args=(call_id, args), name="fnhost-isolated", daemon=True).start()
    os._exit(0)  # guests still blocked (pinned) are abandoned with the process; the host stopped waiting


def isolation_options(**options: Any) -> dict[str, Any]:
    """`Host` keyword arguments for the child: the same stores and limits, no warm instances, no
    child of its own."""
    return {**options, "max_warm_mb": 0, "isolate": False}


_CHILD = "import sys; from fnhost.isolation import _serve; _serve(int(sys.argv[1]))"
"""The child's program: `_serve` under this module's own name (not `__main__`), so that what it sends
unpickles here."""
