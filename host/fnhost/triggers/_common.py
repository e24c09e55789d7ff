"""Shared by the trigger workers: the live manifests of the registry, counters, a stoppable loop."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..capabilities.queue import QUEUE
from ..errors import NotFound
from ..manifest import Manifest, QueueTrigger
from ..namespaces import is_foreign, namespace_of, resolve_manifest
from ..stores import LIVE, StoreUnavailable

if TYPE_CHECKING:
    from ..host import Host

log = logging.getLogger("fnhost.triggers")


class LiveManifests:
    """The manifest of every function's `live` version (what triggers follow), parsed once per version.

    Each is resolved to store names (`fnhost.namespaces.resolve_manifest`: its `name` is the
    function's store name, its trigger queues those of its namespace), and a queue trigger on
    another namespace's queue is left out while that namespace does not share it (`shared`)."""

    def __init__(self, host: Host, shared: Callable[[str, str, str], bool] | None = None) -> None:
        self._host = host
        self._shared = shared
        self._parsed: dict[tuple[str, int], Manifest] = {}
        self._lock = threading.Lock()

    def current(self) -> list[Manifest]:
        out: list[Manifest] = []
        for fn in self._host.list_functions():
            live = next((a.version for a in fn.aliases if a.alias == LIVE), fn.latest_version)
            key = (fn.name, live)
            with self._lock:
                manifest = self._parsed.get(key)
            if manifest is None:
                try:
                    version = self._host.get_version(fn.name, live)
                except NotFound:
                    continue  # deleted meanwhile
                manifest = resolve_manifest(fn.name, version.manifest)
                with self._lock:
                    self._parsed[key] = manifest
            out.append(self._shared_only(manifest))
        return out

    def _shared_only(self, manifest: Manifest) -> Manifest:
        triggers = manifest.queue_triggers
        kept = tuple(t for t in triggers if self.reachable(manifest.name, t))
        return manifest if len(kept) == len(triggers) else dataclasses.replace(manifest, queue_triggers=kept)

    def reachable(self, function: str, trigger: QueueTrigger) -> bool:
        """Whether a (resolved) trigger's queues are `function`'s namespace's, or shared with it now."""
        namespace, shared = namespace_of(function), self._shared
        if shared is None:
            return True
        queues = (trigger.queue, trigger.dead_letter_queue)
        return all(not is_foreign(namespace, q) or shared(QUEUE, q, namespace) for q in queues)


class Counters:
    """Monotonic counters of one process (Prometheus-style), keyed by a name and a label."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[tuple[str, str]] = Counter()
        self._listeners: list[Callable[[str, str, int], None]] = []

    def subscribe(self, listener: Callable[[str, str, int], None]) -> None:
        """Call `listener(name, label, n)` at every increment from now on (the API's metrics do)."""
        self._listeners.append(listener)

    def inc(self, name: str, label: str = "", n: int = 1) -> None:
        if n:
            with self._lock:
                self._values[(name, label)] += n
            for listener in self._listeners:
                listener(name, label, n)

    def get(self, name: str, label: str = "") -> int:
        with self._lock:
            return self._values[(name, label)]

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{name: {label: value}}."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (name, label), value in sorted(self._values.items()):
                out.setdefault(name, {})[label] = value
            return out


class Worker:
    """A daemon thread running `step` until stopped. `step` returns how long to wait before the next
    call (0: at once); an exception is logged and the loop goes on after `error_wait_s`. `on_exit`
    runs on the thread once the loop has ended (what the last step left to finish)."""

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        error_wait_s: float = 1.0,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._on_exit = on_exit
        self._error_wait_s = error_wait_s
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def join(self, timeout: float) -> bool:
        """True if the thread ended within `timeout` seconds."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                wait = self._step()
            except StoreUnavailable as e:  # the database is away: one line, not a traceback a second
                log.warning("fnhost: %s: %s; retrying in %.1f s", self.name, e, self._error_wait_s)
                wait = self._error_wait_s
            except Exception:
                log.exception("fnhost: %s failed; retrying in %.1f s", self.name, self._error_wait_s)
                wait = self._error_wait_s
            if wait > 0 and not self.stopping.is_set():
                self.wake.wait(wait)
                self.wake.clear()
