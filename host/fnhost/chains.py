"""Chain depth: how many function invocations led to this one, and the guard that ends loops through
several functions (docs/events.md, "Loops through several functions").

Invariants:
- An invocation started from outside (the API's invoke, a function URL without `CHAIN_DEPTH_HEADER`,
  a schedule tick, the library) is at depth 0.
- What an invocation at depth N causes is at depth N + 1: each queue message it publishes and each
  blob event its writes make carry N + 1 (stored with the message), and each outbound HTTP request
  it sends carries `CHAIN_DEPTH_HEADER: N + 1`, set by the host (a guest may not set it).
- A queue or blob trigger's delivery runs at the largest depth of its batch; a function URL or
  invoke request at the depth its header claims (absent or not a number: 0). A caller can only
  shorten its own chain by lying about it, and whatever functions send carries the true depth.
- Nothing is ever at a depth over `max_depth`: a message or event that would be is refused (the
  publish or write fails with `ChainTooDeep`, the function's invocation fails, and the message that
  triggered it is retried and dead-lettered as any failed one), and a request that is answers 508.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import LoopDetected

DEFAULT_MAX_CHAIN_DEPTH = 16
"""AWS Lambda's limit: a chain of 16 invocations caused by each other is taken for a loop."""
CHAIN_DEPTH_HEADER = "fnhost-chain-depth"
"""The request header that carries the chain depth of what a function sends over HTTP."""
DOCS = "docs/events.md, 'Loops through several functions'"
OPTION = "max_chain_depth, fnhost serve --max-chain-depth"
PUBLISH, REQUEST = "publish", "request"
"""Where a chain is stopped: a message or blob event refused, or a request answered 508."""


def depth_of_header(value: str | None) -> int:
    """The depth a request's `CHAIN_DEPTH_HEADER` claims; 0 when it is absent or not a small number."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
        return 0
    return int(value)


def too_deep(what: str, depth: int, limit: int) -> str:
    """The message of a chain stopped at `depth` (over `limit`); `what` is what was refused."""
    return (
        f"{what} would be at chain depth {depth}, over the limit of {limit} ({OPTION}): functions that "
        f"trigger each other (through queues, blob triggers or their function URLs) seem to loop, so the host "
        f"stopped the chain; give their outputs a queue or prefix the other does not consume, or raise the "
        f"limit. See {DOCS}"
    )


class ChainGuard:
    """One host's chain limit, and the count of chains it stopped (by function and where)."""

    def __init__(self, max_depth: int = DEFAULT_MAX_CHAIN_DEPTH) -> None:
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(f"max_chain_depth must be a whole number of at least 1, got {max_depth!r}")
        self.max_depth = max_depth
        self._listeners: list[Callable[[str, str], None]] = []
        self._lock = threading.Lock()
        self.stopped: dict[tuple[str, str], int] = {}
        """Chains stopped in this process so far, by (function, `PUBLISH` or `REQUEST`)."""

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(function, where)` for every chain stopped from now on (the API's metrics do)."""
        self._listeners.append(listener)

    def count(self, function: str, where: str) -> None:
        with self._lock:
            self.stopped[(function, where)] = self.stopped.get((function, where), 0) + 1
        for listener in self._listeners:
            listener(function, where)

    def admit(self, function: str, depth: int) -> None:
        """Refuse (`LoopDetected`, counted) an invocation of `function` at `depth` over the limit."""
        if depth > self.max_depth:
            self.count(function, REQUEST)
            raise LoopDetected(too_deep(f"an invocation of function '{function}'", depth, self.max_depth))
