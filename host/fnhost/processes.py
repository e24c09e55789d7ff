"""Several server processes on one port (`fnhost serve --processes N`).

The parent binds the listening sockets, forks the servers and watches them: SIGINT/SIGTERM to the parent are
passed on to every child, a child that dies unexpectedly is replaced (after a short pause; after
`MAX_CRASHES` deaths within `CRASH_WINDOW_S` the parent stops them all), and the parent returns once
they are all gone. It never forks while another thread runs in it: a thread's locks would be
copied held into the child, with no thread left there to release them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESTART_BACKOFF_S = 1.0
MAX_CRASHES = 5
CRASH_WINDOW_S = 60.0
POLL_S = 0.05


def listen(host: str, port: int, backlog: int = 2048, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket the forked children inherit (each serves it as `fd://FD`).

    `reuse_port`: several such sockets share the port, and the kernel spreads new connections
    over them (SO_REUSEPORT).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Hypercorn sets on the sockets it binds
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def exit_status_text(code: int) -> str:
    """`os.waitstatus_to_exitcode`'s value, in words."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


class Supervisor:
    """Forks child processes and watches them; use it as a context manager (it owns SIGINT/SIGTERM)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.stop_signal: int | None = None  # set by SIGINT/SIGTERM to this process
        self.children: dict[int, int] = {}  # pid -> index
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Supervisor:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for pid in self.children:  # only after an error here: the normal ends wait for every child
            _kill(pid, signal.SIGTERM)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum  # passed on by the waiting loops, not here (they may be mid-update)

    def run_once(self, target: Callable[[], int]) -> int:
        """Run `target` in a child process and wait for it; its exit status. A stop signal is passed on."""
        pid = self._fork(target, -1, hold_signals=False)
        passed_on = False
        while True:
            if self.stop_signal is not None and not passed_on:
                _kill(pid, self.stop_signal)
                passed_on = True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del self.children[pid]
                return os.waitstatus_to_exitcode(status)
            time.sleep(POLL_S)

    def serve(
        self,
        count: int,
        target: Callable[[int], int],
        *,
        stop_timeout_s: float,
        on_exit: Callable[[int], None],
    ) -> int:
        """Run `target(index)` in `count` children until a stop signal; 0 if they all stopped cleanly.

        `target` starts with SIGINT/SIGTERM blocked and unblocks them once it handles them (so a
        stop during its start is not lost). `on_exit(pid)` runs for every child reaped. A child
        still running `stop_timeout_s` after the stop is killed.
        """
        for index in range(count):
            self._fork(functools.partial(target, index), index)
        restarts: dict[int, float] = {}  # index -> when to start it again
        crashes: deque[float] = deque()
        deadline: float | None = None  # set when stopping
        clean = True
        while self.children or (restarts and deadline is None):
            now = time.monotonic()
            if self.stop_signal is not None and deadline is None:
                deadline = now + stop_timeout_s
                restarts.clear()
                for pid in self.children:
                    _kill(pid, self.stop_signal)
            for pid, status in self._reap():
                index = self.children.pop(pid)
                on_exit(pid)
                code = os.waitstatus_to_exitcode(status)
                if deadline is not None:
                    if code != 0:
                        self.say(f"fnhost: server process {index} (pid {pid}) {exit_status_text(code)} while stopping")
                        clean = False
                    continue
                crashes.append(now)
                while crashes[0] < now - CRASH_WINDOW_S:
                    crashes.popleft()
                if len(crashes) >= MAX_CRASHES:
                    self.say(
                        f"fnhost: server process {index} (pid {pid}) {exit_status_text(code)}, the {len(crashes)}th "
                        f"to die within {CRASH_WINDOW_S:g} s; stopping the others (see the errors above)"
                    )
                    self.stop_signal = signal.SIGTERM
                    clean = False
                else:
                    self.say(
                        f"fnhost: server process {index} (pid {pid}) {exit_status_text(code)}; "
                        f"starting another in {RESTART_BACKOFF_S:g} s"
                    )
                    restarts[index] = now + RESTART_BACKOFF_S
            if deadline is None:
                for index, due in list(restarts.items()):
                    if due <= now and self.stop_signal is None:
                        del restarts[index]
                        self._fork(functools.partial(target, index), index)
            elif now > deadline and self.children:
                left = len(self.children)
                self.say(f"fnhost: {left} server process(es) running {stop_timeout_s:g} s after the stop; killing")
                for pid in self.children:
                    _kill(pid, signal.SIGKILL)
                deadline = float("inf")
                clean = False
            time.sleep(POLL_S)
        return 0 if clean else 1

    def _reap(self) -> Iterator[tuple[int, int]]:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            yield pid, status

    def _fork(self, target: Callable[[], int], index: int, *, hold_signals: bool = True) -> int:
        others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if others:
            raise RuntimeError(f"will not fork while other threads run in this process: {', '.join(others)}")
        sys.stdout.flush()
        sys.stderr.flush()
        # Blocked across the fork: the parent's handler must not run in the child, nor a stop
        # arrive in the parent before the child is in `children`.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            _child_main(target, unblock=not hold_signals)
        self.children[pid] = index
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        return pid


def _child_main(target: Callable[[], int], *, unblock: bool) -> NoReturn:
    """Run `target` and exit with its status, never returning into the parent's code (or its `finally`s)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if unblock:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        code = target()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited; the next reap finds it
        os.kill(pid, sig)
