"""The invocation pool's bulkheads: a namespace's functions together hold at most their namespace's share
of the workers and admissions, so one team's load never takes another team's workers."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from fnhost.api.context import InvocationPool
from fnhost.api.errors import Throttled
from fnhost.api.metrics import Metrics


def test_one_namespace_cannot_take_the_workers_of_another() -> None:
    pool = InvocationPool(4, 8, Metrics(), function_share=0.5, namespace_share=0.5)
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def hold(name: str) -> str:
        with lock:
            started.append(name)
        release.wait(10)
        return name

    async def scenario() -> None:
        async with anyio.create_task_group() as tg:
            for fn in ("team-a/f1", "team-a/f2", "team-a/f3", "team-a/f4"):
                tg.start_soon(pool.run, fn, lambda fn=fn: hold(fn))
            await anyio.sleep(0.3)
            # team-a holds its 2 workers (4 x 0.5); its other two calls are admitted but wait.
            assert sorted(started) == ["team-a/f1", "team-a/f2"]
            with pytest.raises(Throttled, match="namespace 'team-a' has 4 invocations in flight"):
                await pool.run("team-a/f5", lambda: "never")  # its admissions: 8 x 0.5
            # Another namespace still gets the free workers at once.
            t0 = time.monotonic()
            assert await pool.run("billing", lambda: "ran") == "ran"
            assert time.monotonic() - t0 < 2.0
            release.set()
        assert sorted(started) == ["team-a/f1", "team-a/f2", "team-a/f3", "team-a/f4"]
        assert pool.in_flight == 0 and not pool._namespaces and not pool._functions

    anyio.run(scenario)


def test_shares_are_checked() -> None:
    with pytest.raises(ValueError, match=r"namespace share must be in \(0, 1\]"):
        InvocationPool(4, 8, Metrics(), namespace_share=0)


def test_a_call_whose_caller_goes_away_keeps_its_shares_until_its_thread_returns() -> None:
    """A client that disconnects cancels its request's task, not the guest: the worker and the shares stay
    taken while the invocation runs (else a flood of abandoned requests would run past every limit), and a
    call still waiting for a worker is dropped at once."""
    pool = InvocationPool(1, 8, Metrics(), function_share=1.0)
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(10)
        return "done"

    async def scenario() -> None:
        with anyio.move_on_after(0.3):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pool.run, "f", hold)
                await anyio.sleep(0.1)
                tg.start_soon(pool.run, "f", lambda: "never runs")  # waits for the one worker
                await anyio.sleep(1)
        assert started.is_set()
        assert pool.in_flight == 1 and pool._functions  # the running call keeps its shares
        release.set()
        for _ in range(100):
            if pool.in_flight == 0:
                break
            await anyio.sleep(0.05)
        assert pool.in_flight == 0 and not pool._functions and not pool._namespaces

    anyio.run(scenario)
    pool.close()
