"""How much memory idle warm instances may hold, all functions together: the policy half of
`limits.instance_reuse` (the instances themselves live in `runtime.sandbox.Prepared`).

An idle warm instance is counted at its function's `limits.memory_mb`, the most its memory may
grow to, so the idle total never exceeds `max_bytes` whatever the guests did while they ran. When
an instance going idle does not fit, the least recently idled ones of any function are dropped to
make room; one bigger than the whole budget is never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DEFAULT_MAX_WARM_BYTES = 1 << 30


class WarmPool:
    def __init__(self, max_bytes: int = DEFAULT_MAX_WARM_BYTES) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._idle: OrderedDict[int, tuple[Any, Any, int]] = OrderedDict()  # id(warm) -> (prepared, warm, bytes)
        self._lock = threading.Lock()

    def admit(self, prepared: Any, warm: Any) -> bool:
        """May `warm` (an instance of `prepared`) stay idle? Evicts older idle instances to make room."""
        size = prepared.limits.memory_mb << 20
        if size > self.max_bytes:
            return False
        with self._lock:
            again = self._idle.pop(id(warm), None)  # taken and given back before it was counted
            if again is not None:
                self.used -= again[2]
            while self.used + size > self.max_bytes and self._idle:
                _, (owner, old, old_size) = self._idle.popitem(last=False)
                self.used -= old_size
                owner.discard_warm(old)
            self._idle[id(warm)] = (prepared, warm, size)
            self.used += size
        return True

    def taken(self, warm: Any) -> None:
        """`warm` is no longer idle: taken for an invocation, or dropped."""
        with self._lock:
            entry = self._idle.pop(id(warm), None)
            if entry is not None:
                self.used -= entry[2]
