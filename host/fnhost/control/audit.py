"""Audit policy: which failures are recorded in full and which are counted (the chain itself is
`fnhost.stores.audit`, re-exported here for the API, the CLI and embedders)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from ..stores.audit import MAX_PAGE, AuditEntry, AuditLog, VerifyResult

__all__ = ["MAX_PAGE", "AuditEntry", "AuditLog", "FailedAuthentications", "VerifyResult"]


@dataclass
class _Source:
    started: float  # wall-clock time of its first failure in this interval
    repeats: int = 0  # failures after the first, not yet summarized
    last: float = 0.0
    last_request_id: str | None = None  # the summary row carries the last counted request's id
    reasons: dict[str, int] = dataclass_field(default_factory=dict)
    paths: set[str] = dataclass_field(default_factory=set)


class FailedAuthentications:
    """Failed authentications (401s), aggregated per source per interval instead of one row each.

    A keyless client can fail thousands of times a second, and each audit row is a write
    transaction: one row per failure is a disk-filling attack. Here the first failure of a source
    (its IP address) in each `interval_s` is recorded in full (`auth.denied`, as before); the ones
    after it are only counted, and one `auth.denied.summary` row per source says how many there
    were, when, why (counts per reason) and on which paths (the first `MAX_PATHS`). Summaries are
    written when the interval has passed (at the next failure, or at `flush`). At most
    `max_sources` distinct sources are tracked per interval; more are counted as one source
    `(other sources)`, so memory and rows stay bounded whatever the attacker does. An IPv6 source
    is its /64 (one host holds a whole /64 to pick addresses from).
    """

    OTHER = "(other sources)"
    MAX_PATHS = 10

    def __init__(
        self,
        log: AuditLog,
        interval_s: float = 60.0,
        max_sources: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self.max_sources = max_sources
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._sources: dict[str, _Source] = {}

    def failed(self, source: str, target: str, reason: str, request_id: str | None, detail: dict[str, Any]) -> None:
        """Count one failure; record it in full if it is the source's first in this interval."""
        now = self.clock()
        with self._lock:
            ended = self._take_ended(now)
            if source not in self._sources and len(self._sources) >= self.max_sources:
                source = self.OTHER
            entry = self._sources.get(source)
            first = entry is None
            if entry is None:
                entry = self._sources[source] = _Source(started=now)
            else:
                entry.repeats += 1
                entry.reasons[reason] = entry.reasons.get(reason, 0) + 1
                if len(entry.paths) < self.MAX_PATHS:
                    entry.paths.add(target)
            entry.last = now
            entry.last_request_id = request_id
        self._write(ended)
        if first:
            self.log.record(
                "auth.denied", target, reason, None, request_id, {**detail, "source": source, "aggregated_after": 1}
            )

    @staticmethod
    def source_of(address: str) -> str:
        """The source a client address counts under: the address, or an IPv6 address's /64."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address[:100]
        return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)

    def flush(self, *, end_interval: bool = False) -> None:
        """Write the summaries of an interval that has passed (or of the current one, ending it)."""
        with self._lock:
            ended = self._take_ended(self.clock(), force=end_interval)
        self._write(ended)

    def _take_ended(self, now: float, force: bool = False) -> dict[str, _Source]:
        if not force and now - self._window_start < self.interval_s:
            return {}
        ended, self._sources, self._window_start = self._sources, {}, now
        return ended

    def _write(self, ended: dict[str, _Source]) -> None:
        for source, entry in ended.items():
            if entry.repeats:
                self.log.record(
                    "auth.denied.summary",
                    source,
                    "unauthorized",
                    request_id=entry.last_request_id,
                    detail={
                        "count": entry.repeats,
                        "first_at": entry.started,
                        "last_at": entry.last,
                        "reasons": entry.reasons,
                        "paths": sorted(entry.paths),
                    },
                )
