"""The threads that run guest code, so that whoever waits for a guest can stop waiting at its deadline.

Wasmtime interrupts running wasm at an epoch deadline, but not a guest blocked inside a host call
it made (a WASI preview-2 sleep or poll, in wasmtime-py's own code). The caller of
`GuestThreads.run` therefore never runs the guest itself: it hands it to one of these threads and
waits at most until the deadline. A guest still running then is *abandoned*: the caller gets
`Abandoned` and goes on (its worker slot is free again), the thread stays *pinned* until the guest
returns, and `on_late` runs on that thread when it does. How many threads may be pinned is the
invoker's policy, not this module's.

Threads are made on demand and kept idle for `IDLE_S`. A *demoted* thread runs at a lower CPU
priority (Linux nice `DEMOTED_NICE`; a thread's nice value is its own there): the invoker runs
functions that recently hit their limits on those, so that while they contend for the cores
with well-behaved functions the scheduler favours the well-behaved ones.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

IDLE_S = 30.0
DEMOTED_NICE = 10


class Abandoned(Exception):
    """The guest was still running at the deadline; its thread is pinned until it returns."""


class _Job(Generic[T]):
    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.on_late: Callable[[], None] | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as e:  # handed to the waiting caller, re-raised there
            self.error = e
        with self.lock:
            self.finished = True
            late = self.on_late
        self.done.set()
        if late is not None:
            late()


class _Thread(threading.Thread):
    def __init__(self, pool: GuestThreads, demoted: bool) -> None:
        super().__init__(name=f"fnhost-guest{'-demoted' if demoted else ''}", daemon=True)
        self.pool = pool
        self.demoted = demoted
        self.job: _Job[object] | None = None
        self.wake = threading.Event()

    def run(self) -> None:
        if self.demoted:
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: same priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DEMOTED_NICE)
        while True:
            if not self.wake.wait(IDLE_S):
                if self.pool._retire(self):
                    return
                continue
            self.wake.clear()
            job, self.job = self.job, None
            if job is not None:
                job.run()
            if not self.pool._idle_again(self):
                return


class GuestThreads:
    """An elastic set of guest threads (normal and demoted), reused while idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[bool, list[_Thread]] = {False: [], True: []}
        self._waiting: set[_Job[object]] = set()
        self._closed = False

    def run(
        self,
        fn: Callable[[], T],
        timeout_s: float,
        *,
        demoted: bool = False,
        on_abandon: Callable[[], None],
        on_late: Callable[[], None],
    ) -> T:
        """`fn()` on a guest thread; its value or exception. `Abandoned` if it has not returned after
        `timeout_s`: `on_abandon` runs first (here), and `on_late` (on the guest thread) once it returns."""
        job: _Job[T] = _Job(fn)
        with self._lock:
            closed = self._closed
            if not closed:
                self._waiting.add(job)  # type: ignore[arg-type]
                idle = self._idle[demoted]
                thread = idle.pop() if idle else None
        if closed:  # the host is stopping: nothing runs, so nothing stays pinned
            on_abandon()
            on_late()
            raise Abandoned
        if thread is None:
            thread = _Thread(self, demoted)
            thread.job = job  # type: ignore[assignment]
            thread.wake.set()
            thread.start()
        else:
            thread.job = job  # type: ignore[assignment]
            thread.wake.set()
        job.done.wait(timeout_s)  # also set by `close`: the host is stopping and waits no longer
        with self._lock:
            self._waiting.discard(job)
        with job.lock:
            if not job.finished:
                on_abandon()
                job.on_late = on_late
                raise Abandoned
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[return-value]

    def close(self) -> None:
        """Stop waiting for guests (their callers get `Abandoned` now) and let idle threads end; busy
        and pinned ones end when their guest returns (they are daemon threads: exiting does not wait)."""
        with self._lock:
            self._closed = True
            threads = self._idle[False] + self._idle[True]
            self._idle = {False: [], True: []}
            waiting, self._waiting = self._waiting, set()
        for job in waiting:
            job.done.set()
        for thread in threads:
            thread.wake.set()

    def _idle_again(self, thread: _Thread) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._idle[thread.demoted].append(thread)
            return True

    def _retire(self, thread: _Thread) -> bool:
        """An idle thread timed out waiting: it ends, unless a job was just handed to it."""
        with self._lock:
            idle = self._idle[thread.demoted]
            if thread in idle:
                idle.remove(thread)
                return True
            return False
