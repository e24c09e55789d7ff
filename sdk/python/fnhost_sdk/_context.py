"""`Context`: what the host knows about the running invocation."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    invocation_id: str
    function_name: str
    function_version: str
    deadline_unix_ms: int  # past it, the instance is stopped
    memory_limit_mb: int

    def remaining_ms(self) -> int:
        """Milliseconds left before the deadline (0 once it has passed)."""
        return max(0, self.deadline_unix_ms - int(time.time() * 1000))
