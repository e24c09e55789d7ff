"""Tiered compilation: ready in seconds with Winch, then Cranelift code swapped in from the background.

At deploy (or when a restarted host first loads a version), wasm of at least
`EngineSettings.baseline_min_bytes` whose Cranelift artifact is not cached yet is compiled with
Winch (the 18 MB Python component: ~2.5 s instead of ~14 s) and serves at once. One background
thread per host then compiles it with Cranelift, one version at a time, and the caller's
`swap` puts the optimized version in place; requests already running finish on the old code. Each
tier has its own verified compile cache (engine.CompileCache, keyed by compiler), so after a
restart the Cranelift artifact loads directly. Fuel and epoch deadlines are set the same way in
both tiers; docs/performance.md lists where Winch's fuel accounting differs.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .engine import CRANELIFT, WINCH, CompileCache

log = logging.getLogger("fnhost.runtime")

Job = Callable[[], None]


class TieredCompiler:
    def __init__(self, caches: Mapping[str, CompileCache], baseline_min_bytes: int | None) -> None:
        self.caches = dict(caches)
        self.baseline_min_bytes = baseline_min_bytes if WINCH in self.caches else None
        self._jobs: deque[Job] = deque()  # guarded by _idle
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def compile(self, sha256: str, size: int, component: bool, wasm: Callable[[], bytes]) -> tuple[Any, str]:
        """(compiled code, its compiler): Cranelift when cached or small, else Winch (then tier up)."""
        optimized = self.caches[CRANELIFT]
        if self.baseline_min_bytes is None or size < self.baseline_min_bytes or optimized.cached(sha256):
            return optimized.load(sha256, component, wasm)[0], CRANELIFT
        return self.caches[WINCH].load(sha256, component, wasm)[0], WINCH

    def tier_up(self, sha256: str, component: bool, wasm: Callable[[], bytes], swap: Callable[[Any], None]) -> None:
        """Compile with Cranelift in the background, then `swap(compiled)`."""

        def job() -> None:
            compiled, _ = self.caches[CRANELIFT].load(sha256, component, wasm)
            if not self._closed:
                swap(compiled)

        with self._idle:
            if self._closed:
                return
            self._pending += 1
            self._jobs.append(job)
            self._idle.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fnhost-tier-up", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no tier-up is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _next(self) -> Job | None:
        with self._idle:
            self._idle.wait_for(lambda: self._jobs or self._closed)
            return None if self._closed else self._jobs.popleft()

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                job()
            except Exception:  # the Winch code keeps serving; the next load tries again
                log.exception("tier-up to Cranelift failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def remove(self, sha256: str) -> None:
        for cache in self.caches.values():
            cache.remove(sha256)

    def close(self) -> None:
        """Stop taking tier-ups; a compile in progress is abandoned (its thread is a daemon)."""
        with self._idle:
            self._closed = True
            self._pending -= len(self._jobs)
            self._jobs.clear()
            self._idle.notify_all()
