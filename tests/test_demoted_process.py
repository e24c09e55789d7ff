"""A demoted function runs in the isolation process (fnhost.isolation): its calls still answer, through
the same stores and records; a well-behaved function never goes there; a killed isolation process
costs only the calls it had, and is replaced."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wat_guests as g
from conftest import COMPILED, build_or_skip, needs_componentize_py, wait_for

from fnhost import Host, Outcome, isolation
from fnhost.runtime import abi

GUESTS = Path(__file__).resolve().parents[1] / "guests"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path / "data", cache_dir=COMPILED, isolate=True)
    built = build_or_skip(GUESTS / "rust" / "chaos")
    for name, timeout_ms in (("hog", 2000), ("good", 2000)):
        manifest = built.manifest.to_dict()
        manifest.update(name=name, limits={**manifest["limits"], "timeout_ms": timeout_ms, "fuel": 10**15})
        h.deploy(name, built.wasm_path.read_bytes(), manifest)
    yield h
    h.close()


def demote(host: Host, name: str) -> int:
    """Make `name` hit its timeout, then wait for the isolation process; its pid."""
    assert host.invoke(name, b"loop").outcome == Outcome.TIMEOUT
    assert host.isolation is not None
    host.invoke(name, b"ok")  # a demoted call: starts the isolation process (this one runs here)
    return wait_for(lambda: host.isolation.pid, timeout_s=60, what="the isolation process")  # type: ignore[union-attr]


def test_a_demoted_function_runs_in_the_isolation_process_with_the_same_records(host: Host) -> None:
    pid = demote(host, "hog")
    assert pid != os.getpid() and Path(f"/proc/{pid}").exists()
    before = host.runtime_stats().isolated_invocations

    result = host.invoke("hog", b"alloc:40")
    assert result.outcome == Outcome.OK, result.error
    assert result.output == b'{"allocated_mb":40}'
    assert result.memory_used_bytes is not None and result.memory_used_bytes >= 40 << 20  # measured there
    assert host.runtime_stats().isolated_invocations == before + 1
    record = host.invocations.get(result.invocation_id)
    assert record is not None and record.outcome == "ok" and record.function == "hog"

    batch = abi.QueueBatch((abi.BatchMessage("m1", "orders", b"{}", 1),))  # events cross too
    assert host.invoke_event("hog", batch, trigger="queue").output == b'{"ignored":"QueueBatch"}'
    assert host.runtime_stats().isolated_invocations == before + 2

    timed_out = host.invoke("hog", b"loop")  # its limits hold there as here
    assert timed_out.outcome == Outcome.TIMEOUT and "limits.timeout_ms" in (timed_out.error or "")

    # the well-behaved function is not demoted, and never runs there
    calls = host.runtime_stats().isolated_invocations
    assert host.invoke("good", b"ok").output == b"ok"
    assert host.runtime_stats().isolated_invocations == calls
    # the child runs at a lower CPU priority than this process
    assert os.getpriority(os.PRIO_PROCESS, pid) > os.getpriority(os.PRIO_PROCESS, 0)


def test_a_killed_isolation_process_fails_only_its_calls_and_is_replaced(host: Host) -> None:
    pid = demote(host, "hog")
    in_flight: list[object] = []
    caller = threading.Thread(target=lambda: in_flight.append(host.invoke("hog", b"loop")))
    caller.start()
    time.sleep(0.3)  # the loop is running in the child
    os.kill(pid, signal.SIGKILL)
    caller.join(10)
    (lost,) = in_flight
    assert lost.outcome == Outcome.GUEST_TRAP  # type: ignore[attr-defined]
    assert "isolation process" in lost.error and "signal 9" in lost.error, lost.error  # type: ignore[attr-defined]

    assert host.invoke("good", b"ok").output == b"ok"  # the host goes on
    assert host.invoke("hog", b"ok").output == b"ok"  # here, while a new child starts

    def restarted() -> int | None:
        assert host.invoke("hog", b"ok").output == b"ok"
        return host.isolation.pid  # type: ignore[union-attr]

    new = wait_for(restarted, timeout_s=60, what="a new isolation process")
    assert new != pid and host.isolation is not None and host.isolation.started == 2
    before = host.runtime_stats().isolated_invocations
    assert host.invoke("hog", b"ok").output == b"ok"
    assert host.runtime_stats().isolated_invocations == before + 1


def test_isolation_processes_that_keep_ending_are_restarted_ever_more_slowly(host: Host) -> None:
    """Whatever kills the child (a guest that crashes Wasmtime, say) cannot make the host spend its
    cores on starting children: one that ends within SHORT_LIFE_S delays the next start, 1 s, 2 s, ..."""
    isolation = host.isolation
    assert isolation is not None
    demote(host, "hog")
    for delay in (1.0, 2.0):
        os.kill(isolation.pid, signal.SIGKILL)  # type: ignore[arg-type]
        wait_for(lambda: isolation.pid is None, timeout_s=10, what="the loss to be seen")
        lost = time.monotonic()
        started = isolation.started
        while time.monotonic() < lost + delay - 0.3:  # asked for again and again: not started yet
            assert host.invoke("hog", b"ok").output == b"ok"
            assert isolation.started == started
            time.sleep(0.1)
        time.sleep(0.5)

        def restarted() -> int | None:
            assert host.invoke("hog", b"ok").output == b"ok"
            return isolation.pid

        wait_for(restarted, timeout_s=60, what="the next isolation process")
        assert isolation.started == started + 1


def test_closing_the_host_ends_the_isolation_process(host: Host) -> None:
    pid = demote(host, "hog")
    host.close()
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
             timeout_s=10, what="the isolation process to end")  # fmt: skip


# wat_guests.KV_GET (the output is kv_get's status, an i64), but given an input longer than 600 bytes
# (a payload past the ~100-byte context) it loops until the deadline first.
KV_GET_OR_LOOP = g.kv_get("(if (i32.gt_u (local.get 1) (i32.const 600)) (then (loop $l (br $l))))")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_demoted_function_reaches_only_its_grants_from_the_isolation_process(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = request.getfixturevalue("postgres_server").new_database() if backend == "postgresql" else None
    with Host(tmp_path / "data", cache_dir=COMPILED, isolate=True, database=database) as host:
        limits = {"timeout_ms": 300, "fuel": 10**15}
        host.deploy("granted", KV_GET_OR_LOOP, {"name": "granted", "grants": {"kv": ["b"]}, "limits": limits})
        host.deploy("ungranted", KV_GET_OR_LOOP, {"name": "ungranted", "grants": {"kv": ["c"]}, "limits": limits})
        host.kv.set("b", "k", b"value")
        status = lambda r: struct.unpack("<q", r.output)[0]  # noqa: E731
        for name in ("granted", "ungranted"):
            assert host.invoke(name, b"x" * 1000).outcome == Outcome.TIMEOUT  # demoted
        host.invoke("granted")  # starts the isolation process
        wait_for(lambda: host.isolation.pid, timeout_s=60, what="the isolation process")  # type: ignore[union-attr]
        before = host.runtime_stats().isolated_invocations

        assert status(host.invoke("granted")) == 5  # the value's length: read through the shared store
        host.kv.set("b", "k", b"changed!")
        assert status(host.invoke("granted")) == 8  # written here, read there at once
        assert status(host.invoke("ungranted")) == -1  # denied there as here, no trap
        assert host.runtime_stats().isolated_invocations == before + 3


@needs_componentize_py
def test_a_guest_blocked_past_its_deadline_there_is_ended_with_the_isolation_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process a guest blocked in an uninterruptible WASI sleep keeps its thread (pinned) until
    the sleep returns; in the isolation process it is ended MAX_OVERRUN_S past its deadline, with the
    process. HTTP calls go there too."""
    monkeypatch.setattr(isolation, "MAX_OVERRUN_S", 1.0)
    wasm = build_or_skip(GUESTS / "python" / "pinned").wasm_path.read_bytes()
    with Host(tmp_path / "data", cache_dir=COMPILED, isolate=True) as host:
        host.deploy("pinned", wasm, {"name": "pinned", "http": {"public": True}, "limits": {"timeout_ms": 500}})
        assert host.invoke("pinned", b"sleep:1").outcome == Outcome.TIMEOUT  # demoted; pinned here for 1 s

        def up() -> int | None:
            host.invoke_http("pinned", "GET", "/sleep?s=0")
            return host.isolation.pid  # type: ignore[union-attr]

        pid = wait_for(up, timeout_s=60, what="the isolation process")
        before = host.runtime_stats().isolated_invocations
        answer = host.invoke_http("pinned", "GET", "/sleep?s=0", [("accept", "application/json")])
        assert answer.outcome == Outcome.OK and answer.response is not None, answer.error
        assert answer.response.status == 200 and answer.response.body == b'{"slept_s":0.0}'
        assert host.runtime_stats().isolated_invocations == before + 1

        started = time.monotonic()
        blocked = host.invoke("pinned", b"sleep:600")
        assert blocked.outcome == Outcome.TIMEOUT and time.monotonic() - started < 1.5
        assert host.runtime_stats().pinned_by_function == {"pinned": 1}
        wait_for(lambda: host.runtime_stats().pinned_by_function == {}, timeout_s=10, what="the thread unpinned")
        assert time.monotonic() - started < 5  # 0.5 s timeout + 1 s overrun, not 600 s
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout_s=10, what="the killed child reaped")


def test_the_isolation_process_does_not_outlive_a_killed_host(tmp_path: Path) -> None:
    """A host that dies (SIGKILL: no close) leaves no isolation process running guests behind."""
    wasm = build_or_skip(GUESTS / "rust" / "chaos").wasm_path
    script = textwrap.dedent(f"""
        import sys, time
        from fnhost import Host
        host = Host({str(tmp_path / "data")!r}, cache_dir={str(COMPILED)!r}, isolate=True)
        limits = {{"timeout_ms": 300, "fuel": 10**15}}
        host.deploy("hog", open({str(wasm)!r}, "rb").read(), {{"name": "hog", "limits": limits}})
        host.invoke("hog", b"loop")
        while host.isolation.pid is None:
            host.invoke("hog", b"ok")
            time.sleep(0.1)
        print(host.isolation.pid, flush=True)
        host.invoke("hog", b"loop")  # the child is running a guest when this process is killed
        time.sleep(600)
    """)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "host")}
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert host.stdout is not None
        child = int(host.stdout.readline())
        time.sleep(0.1)
        host.kill()
        host.wait(10)

        def gone() -> bool:
            try:
                return Path(f"/proc/{child}/stat").read_text().split(") ", 1)[1][0] == "Z"
            except OSError:
                return True

        wait_for(gone, timeout_s=10, what="the isolation process to end with its host")
    finally:
        host.kill()
