"""The sandbox through the public Host API, with tiny WAT core modules (no toolchain needed)."""

from __future__ import annotations

import hashlib
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import wat_guests as g
from conftest import COMPILED

from fnhost import Host, InvalidWasm, InvocationResult, ManifestError, Outcome
from fnhost.runtime import abi


def deploy(host: Host, wasm: bytes, name: str = "f", **limits: int) -> None:
    host.deploy(name, wasm, {"name": name, "limits": limits, "grants": {"kv": ["b"]}})


def test_echo_roundtrip_encodes_context_and_payload(host: Host) -> None:
    deploy(host, g.ECHO, memory_mb=16)
    r = host.invoke("f", b"hello")
    assert r.outcome is Outcome.OK, r.error
    ctx = abi.Context(r.invocation_id, "f", "1", 0, 16)
    expected = abi.encode_invoke_input(ctx, b"hello")
    # everything but the deadline (8 bytes after the three strings) is predictable
    cut = 4 + len(r.invocation_id) + 4 + 1 + 4 + 1
    assert r.output[:cut] == expected[:cut]
    deadline = struct.unpack_from("<Q", r.output, cut)[0]
    assert abs(deadline - (r.started_at * 1000 + 5000)) < 1000
    assert r.output[cut + 8 :] == expected[cut + 8 :]
    assert r.memory_used_bytes == 2 * 65536
    assert r.fuel_consumed > 0
    assert f"RequestId: {r.invocation_id}" in r.report and "Memory Size: 16 MB" in r.report


def test_large_payload_through_linear_memory(host: Host) -> None:
    deploy(host, g.ECHO, memory_mb=64)
    payload = bytes(range(256)) * 4096  # 1 MiB
    r = host.invoke("f", payload)
    assert r.outcome is Outcome.OK, r.error
    assert r.output.endswith(struct.pack("<I", len(payload)) + payload)  # the encoded input, verbatim


def test_infinite_loop_times_out_within_twice_the_timeout(host: Host) -> None:
    deploy(host, g.LOOP, timeout_ms=200, fuel=10**15)
    t0 = time.monotonic()
    r = host.invoke("f")
    elapsed = time.monotonic() - t0
    assert r.outcome is Outcome.TIMEOUT
    assert "200 ms" in (r.error or "")
    assert elapsed < 0.4


def test_fuel_budget(host: Host) -> None:
    deploy(host, g.LOOP, timeout_ms=60_000, fuel=5_000_000)
    r = host.invoke("f")
    assert r.outcome is Outcome.FUEL_EXHAUSTED
    assert r.fuel_consumed == 5_000_000


def test_memory_bomb_hits_the_cap(host: Host) -> None:
    deploy(host, g.MEMORY_BOMB, memory_mb=8)
    r = host.invoke("f")
    assert r.outcome is Outcome.MEMORY_LIMIT, r.error
    assert r.memory_used_bytes is not None and r.memory_used_bytes <= 8 * 2**20


def test_refused_large_allocation_is_a_memory_limit(host: Host) -> None:
    # Memory stays small (the one big grow was refused), so only the runtime's stderr tells.
    deploy(host, g.OOM_ABORT, memory_mb=8)
    r = host.invoke("f")
    assert r.outcome is Outcome.MEMORY_LIMIT, r.error
    assert r.logs == ["[stderr] memory allocation of 209715200 bytes failed"]
    deploy(host, g.TRAP, name="plain")
    assert host.invoke("plain").outcome is Outcome.GUEST_TRAP


def test_deep_recursion_is_a_trap(host: Host) -> None:
    deploy(host, g.RECURSE)
    r = host.invoke("f")
    assert r.outcome is Outcome.GUEST_TRAP
    assert "stack" in (r.error or "")


def test_trap_and_guest_error(host: Host) -> None:
    deploy(host, g.TRAP, name="t")
    deploy(host, g.FAILS, name="e")
    r = host.invoke("t")
    assert r.outcome is Outcome.GUEST_TRAP and "unreachable" in (r.error or "")
    r = host.invoke("e")
    assert r.outcome is Outcome.GUEST_ERROR and r.error == "boom"


def test_missing_handler_is_a_guest_error(host: Host) -> None:
    deploy(host, g.ECHO)
    r = host.invoke_http("f", "GET", "/")
    assert r.outcome is Outcome.GUEST_ERROR
    assert "http handler" in (r.error or "")


def test_invalid_http_response_is_a_guest_error(host: Host) -> None:
    deploy(host, g.BAD_STATUS)
    r = host.invoke_http("f", "GET", "/")
    assert r.outcome is Outcome.GUEST_ERROR
    assert r.error == "handler returned HTTP status 1000; it must be 200..599"


@pytest.mark.parametrize("status", [100, 101, 103, 199])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_interim_status_is_a_guest_error_and_a_5xx_at_the_function_url(tmp_path: Path, status: int) -> None:
    """A guest answering 100 used to send a bare `HTTP/1.1 100` and no final response; 101 dropped the
    connection with an h11 traceback."""
    from starlette.testclient import TestClient

    from fnhost.api import create_app

    with Host(tmp_path / "d", cache_dir=tmp_path / "cache") as host:
        host.deploy("f", g.http_status(status), {"name": "f", "http": {"public": True}})
        r = host.invoke_http("f", "GET", "/")
        assert r.outcome is Outcome.GUEST_ERROR
        assert r.error == (
            f"handler returned HTTP status {status} (an interim 1xx status, not a final response); "
            "it must be 200..599"
        )
        with TestClient(create_app(host), raise_server_exceptions=False) as client:
            response = client.get("/fn/f/")
        # a clear failure of the function (the WIT contract maps a handler's failure to 500), never a 1xx
        assert response.status_code in (500, 502)
        assert response.headers["x-fnhost-outcome"] == "guest_error"


@pytest.mark.parametrize("status", [200, 204, 404, 599])
def test_final_statuses_pass(host: Host, status: int) -> None:
    host.deploy("f", g.http_status(status), {"name": "f"})
    r = host.invoke_http("f", "GET", "/")
    assert r.outcome is Outcome.OK and r.response is not None and r.response.status == status


def test_stdout_flood_is_bounded(host: Host) -> None:
    host.deploy("f", g.STDOUT_FLOOD, {"name": "f", "limits": {"max_log_bytes": 100_000}})
    r = host.invoke("f", b"x")
    assert r.outcome is Outcome.OK
    total = sum(len(line) + 1 for line in r.logs)
    assert total < 100_000 + 200
    assert r.logs[-1].startswith("[fnhost] log truncated")


def test_a_log_buffer_holds_what_it_counts_whatever_the_guest_writes() -> None:
    """Memory held, not only bytes of text counted: 200,000 two-byte log lines (a str object and a list slot
    each, ~20 times the bytes counted before) and one 64 MiB line written to stdout (copied and split
    whole before) each cost about the cap, while the invocation runs and once its lines are read back."""
    import tracemalloc

    from fnhost.capabilities import LogBuffer

    cap = 100_000
    flood = b"A" * (64 << 20)

    def short_lines(buffer: LogBuffer) -> None:
        for i in range(200_000):
            buffer.add(f"{i % 10}.")  # a new str object each, as a guest's log call makes

    for write in (short_lines, lambda b: b.stream("stdout", flood)):
        tracemalloc.start()
        buffer = LogBuffer(cap)
        write(buffer)
        lines = buffer.lines
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert buffer.truncated and lines[-1].startswith("[fnhost] log truncated: over 100000 bytes")
        assert sum(len(line) + 1 for line in lines) < cap + 100
        assert peak < 8 * cap, peak  # a few passing copies of at most the cap (before: 2.1 MB and 134 MB)


def test_running_invocations_share_one_bounded_log_memory(tmp_path: Path) -> None:
    """Each invocation may log 8 MiB, the host holds at most 1 MiB of logs of running invocations together:
    past it lines are dropped with a marker that names the host's limit, and every byte comes back after."""
    with Host(tmp_path / "data", cache_dir=COMPILED, max_log_memory_mb=1) as host:
        host.deploy("f", g.STDOUT_FLOOD, {"name": "f", "limits": {"max_log_bytes": 8 << 20}})  # 4 MiB a call
        results: list[InvocationResult] = []
        threads = [threading.Thread(target=lambda: results.append(host.invoke("f", b"x"))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(results) == 4
        for r in results:
            assert r.outcome is Outcome.OK
            assert sum(len(line) + 1 for line in r.logs) <= (1 << 20) + 200
            assert "the host's log memory for running invocations (1048576 bytes) is in use" in r.logs[-1]
        stats = host.runtime_stats()
        assert (stats.log_bytes, stats.max_log_bytes) == (0, 1 << 20)


def test_host_serves_after_every_failure(host: Host) -> None:
    deploy(host, g.ECHO, name="ok")
    for name, wasm, limits in [
        ("loop", g.LOOP, {"timeout_ms": 50}),
        ("bomb", g.MEMORY_BOMB, {"memory_mb": 4}),
        ("rec", g.RECURSE, {}),
        ("trap", g.TRAP, {}),
    ]:
        deploy(host, wasm, name=name, **limits)
        assert host.invoke(name).outcome is not Outcome.OK
        assert host.invoke("ok", b"still here").outcome is Outcome.OK
        assert host.invoke(name).outcome is not Outcome.OK  # the same function fails the same way


def test_log_calls_count_against_the_host_call_budget(host: Host) -> None:
    deploy(host, g.LOG_LOOP, max_host_calls=10)
    r = host.invoke("f")
    assert r.outcome is Outcome.OK
    assert r.logs[:10] == ["[info] hi"] * 10
    assert r.logs[10].startswith("[fnhost] log lines dropped from here: host-call budget")
    assert len(r.logs) == 11


def test_kv_grant_checked_in_core_abi(host: Host) -> None:
    host.deploy("granted", g.KV_GET, {"name": "granted", "grants": {"kv": ["b"]}})
    host.deploy("ungranted", g.KV_GET, {"name": "ungranted", "grants": {"kv": ["other"]}})
    status = lambda r: struct.unpack("<q", r.output)[0]  # noqa: E731
    assert status(host.invoke("granted")) == -2  # not-found
    host.kv.set("b", "k", b"value")
    assert status(host.invoke("granted")) == 5  # length of the pending result
    r = host.invoke("ungranted")
    assert status(r) == -1  # denied, and no trap


def test_instance_reuse_keeps_state_until_limit(host: Host) -> None:
    # ECHO's bump allocator never frees: a warm instance's pointer keeps climbing.
    deploy(host, g.ECHO, instance_reuse=3)
    sizes = [host.invoke("f", b"x" * 40_000).memory_used_bytes for _ in range(4)]
    assert sizes[0] == 2 * 65536
    assert sizes[2] > sizes[0]  # third call, same instance: grown
    assert sizes[3] == 2 * 65536  # fourth: a fresh instance after 3 uses


def test_instance_discarded_after_trap(host: Host) -> None:
    deploy(host, g.MEMORY_BOMB, instance_reuse=10, memory_mb=4)
    assert host.invoke("f").outcome is Outcome.MEMORY_LIMIT
    assert host.invoke("f").outcome is Outcome.MEMORY_LIMIT  # a fresh instance fails the same way


def test_warm_instance_meets_every_limit_again(host: Host) -> None:
    # The warm path caches the instance's exports and its store's context: each call must still set
    # its own fuel and deadline, and measure memory as it is now. The misbehaving instance is dropped.
    deploy(host, g.after_first_call(g.SPIN), name="spins", instance_reuse=10, timeout_ms=200, fuel=10**15)
    deploy(host, g.after_first_call(g.SPIN), name="burns", instance_reuse=10, timeout_ms=60_000, fuel=5_000_000)
    deploy(host, g.after_first_call(g.GROW_UNTIL_REFUSED), name="grows", instance_reuse=10, memory_mb=4)
    deploy(host, g.after_first_call("unreachable"), name="traps", instance_reuse=10)
    for name, outcome in (
        ("spins", Outcome.TIMEOUT),
        ("burns", Outcome.FUEL_EXHAUSTED),
        ("grows", Outcome.MEMORY_LIMIT),
        ("traps", Outcome.GUEST_TRAP),
    ):
        first = host.invoke(name, b"a")
        assert first.outcome is Outcome.OK and first.output.endswith(b"a"), (name, first.error)
        t0 = time.monotonic()
        again = host.invoke(name, b"b")  # the same instance, warm
        assert again.outcome is outcome, (name, again.error)
        assert time.monotonic() - t0 < 0.4 if name == "spins" else True
        if name == "burns":
            assert again.fuel_consumed == 5_000_000
        if name == "grows":
            assert again.memory_used_bytes is not None and again.memory_used_bytes <= 4 * 2**20
        fresh = host.invoke(name, b"c")  # a fresh instance: the failed one was not kept
        assert fresh.outcome is Outcome.OK and fresh.output.endswith(b"c"), (name, fresh.error)


def test_warm_instance_gets_its_whole_budget_each_call(host: Host) -> None:
    counts = g.module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $echo_input (local.get 0) (local.get 1)))
""")
    deploy(host, counts, name="probe")
    per_call = host.invoke("probe", b"x" * 100).fuel_consumed
    deploy(host, counts, instance_reuse=100, fuel=per_call * 3 // 2)  # two calls' worth would not fit
    results = [host.invoke("f", b"x" * 100) for _ in range(5)]
    assert [r.outcome for r in results] == [Outcome.OK] * 5, results[-1].error
    assert len({r.fuel_consumed for r in results}) == 1  # each call counted from its own budget
    deploy(host, g.ECHO, name="brief", instance_reuse=100, timeout_ms=100)
    assert host.invoke("brief").outcome is Outcome.OK
    time.sleep(0.25)  # past the first call's deadline: the next call has its own
    assert host.invoke("brief").outcome is Outcome.OK


def test_warm_instance_moves_data_while_its_memory_grows(host: Host) -> None:
    # 100 KB per call grows ECHO's memory in fnhost_alloc and again in the handler, every call: the
    # host must write and read at the memory's address as it is after each growth.
    deploy(host, g.ECHO, instance_reuse=10, memory_mb=16)
    sizes = []
    for i in range(5):
        payload = bytes([i]) * 100_000
        r = host.invoke("f", payload)
        assert r.outcome is Outcome.OK and r.output.endswith(struct.pack("<I", len(payload)) + payload), r.error
        sizes.append(r.memory_used_bytes)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_concurrent_invokes_and_throttling(host: Host) -> None:
    deploy(host, g.LOOP, name="slow", timeout_ms=300, max_concurrency=2)
    deploy(host, g.ECHO, name="fast")
    results: list[Outcome] = []
    threads = [threading.Thread(target=lambda: results.append(host.invoke("slow").outcome)) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    fast = [host.invoke("fast", b"p").outcome for _ in range(5)]
    for t in threads:
        t.join()
    assert fast == [Outcome.OK] * 5
    assert sorted(results) == sorted([Outcome.TIMEOUT, Outcome.TIMEOUT, Outcome.THROTTLED])


def test_bad_wasm_and_manifests_store_nothing(host: Host) -> None:
    with pytest.raises(InvalidWasm, match="not WebAssembly"):
        host.deploy("f", b"hello", {"name": "f"})
    with pytest.raises(InvalidWasm, match="Wasmtime rejects"):
        host.deploy("f", b"\x00asm\x01\x00\x00\x00garbage", {"name": "f"})
    with pytest.raises(InvalidWasm, match="fnhost_alloc"):
        host.deploy("f", g.NO_ALLOC, {"name": "f"})
    with pytest.raises(InvalidWasm, match="imports something"):
        host.deploy("f", g.UNKNOWN_IMPORT, {"name": "f"})
    with pytest.raises(ManifestError, match=r"limits.memory_mb: must be 1..4096, got 0"):
        host.deploy("f", g.ECHO, {"name": "f", "limits": {"memory_mb": 0}})
    with pytest.raises(ManifestError, match=r"grants\.network"):
        host.deploy("f", g.ECHO, {"name": "f", "grants": {"network": ["*"]}})
    with pytest.raises(ManifestError, match="names 'g'"):
        host.deploy("f", g.ECHO, {"name": "g"})
    assert host.list_functions() == []
    assert list((host.data_dir / "wasm").iterdir()) == []


def test_versions_aliases_and_idempotent_deploy(host: Host) -> None:
    v1 = host.deploy("f", g.ECHO, {"name": "f"})
    assert host.deploy("f", g.ECHO, {"name": "f"}).version == v1.version
    v2 = host.deploy("f", g.FAILS, {"name": "f"})
    assert v2.version == 2
    assert host.invoke("f").outcome is Outcome.GUEST_ERROR
    assert host.invoke("f", qualifier=1).outcome is Outcome.OK
    host.set_alias("f", "live", 1)  # roll back
    assert host.invoke("f").outcome is Outcome.OK
    host.delete_function("f")
    assert list((host.data_dir / "wasm").iterdir()) == []


def test_compile_cache_survives_restart(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
    artifacts = list(cache.rglob("*.cwasm"))
    assert len(artifacts) == 1
    mtime = artifacts[0].stat().st_mtime_ns
    with Host(tmp_path / "d", cache_dir=cache) as h:
        assert h.invoke("f", b"again").outcome is Outcome.OK
    assert artifacts[0].stat().st_mtime_ns == mtime  # loaded, not recompiled


def test_corrupt_cache_entry_is_recompiled(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
    (artifact,) = cache.rglob("*.cwasm")
    artifact.write_bytes(b"not a compiled module")
    with Host(tmp_path / "d", cache_dir=cache) as h:
        assert h.invoke("f", b"x").outcome is Outcome.OK
    assert artifact.read_bytes() != b"not a compiled module"


FLIPPED_ARTIFACT_PROGRAM = """
import sys
from fnhost import Host
with Host(sys.argv[1], cache_dir=sys.argv[2]) as h:
    r = h.invoke("f", b"after the flip")
    print(r.outcome.value, r.output.endswith(b"after the flip"))
"""


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_artifact_with_flipped_bytes_is_recompiled_never_loaded(tmp_path: Path, where: float) -> None:
    """64 flipped bytes in a cached artifact used to crash the next process (SIGSEGV) on every start."""
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
    (artifact,) = cache.rglob("*.cwasm")
    data = bytearray(artifact.read_bytes())
    at = int(len(data) * where)
    data[at : at + 64] = bytes(b ^ 0xFF for b in data[at : at + 64])
    artifact.write_bytes(bytes(data))
    for _ in range(2):  # and the restart after that
        run = subprocess.run(
            [sys.executable, "-c", FLIPPED_ARTIFACT_PROGRAM, str(tmp_path / "d"), str(cache)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.split() == ["ok", "True"]
    assert artifact.read_bytes() != bytes(data)  # replaced by a fresh compile
    digest = artifact.with_name(artifact.name + ".sha256").read_text()
    assert digest == hashlib.sha256(artifact.read_bytes()).hexdigest()


def test_artifact_without_its_digest_is_not_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
    (artifact,) = cache.rglob("*.cwasm")
    artifact.with_name(artifact.name + ".sha256").unlink()
    mtime = artifact.stat().st_mtime_ns
    with Host(tmp_path / "d", cache_dir=cache) as h:
        assert h.invoke("f", b"x").outcome is Outcome.OK
    assert artifact.stat().st_mtime_ns != mtime  # recompiled, not loaded


def test_compile_cache_directories_are_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    with Host(tmp_path / "d", cache_dir=cache) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
    (artifact,) = cache.rglob("*.cwasm")
    for d in (cache, artifact.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_invocations_are_recorded(host: Host) -> None:
    deploy(host, g.ECHO)
    r = host.invoke("f", b"x")
    rec = host.invocations.get(r.invocation_id)
    assert rec is not None and rec.outcome == "ok" and rec.report == r.report


def test_the_record_is_the_invocation_as_it_ended(host: Host) -> None:
    # the recorder makes the row with its batch, after the caller has the result: what the caller
    # does to the result's lists must not reach the record
    deploy(host, g.LOG_PAYLOAD)
    r = host.invoke("f", b"logged line")
    assert r.logs == ["[info] logged line"], r.logs
    r.logs.append("added by the caller")
    rec = host.invocations.get(r.invocation_id)
    assert rec is not None
    assert (rec.logs, rec.outbound, rec.report) == ("[info] logged line", "[]", r.report)
    assert (rec.fuel_consumed, rec.memory_used_bytes, rec.billed_ms) == (r.fuel_consumed, r.memory_used_bytes, r.billed_ms)


def test_a_version_number_reused_after_delete_never_runs_the_old_code(tmp_path: Path) -> None:
    """Two hosts on one data dir (as `--processes 2`): one deletes and redeploys, so version 1 is new code."""
    a, b = Host(tmp_path / "data", cache_dir=tmp_path / "c"), Host(tmp_path / "data", cache_dir=tmp_path / "c")
    try:
        b.resolve_ttl_s = 0.0  # no cached aliases: what every host sees once its TTL has passed
        deploy(a, g.ECHO)
        assert b.invoke("f", b"x").outcome is Outcome.OK  # b prepared version 1
        a.delete_function("f")
        deploy(a, g.TRAP)  # version 1 again, other code
        assert b.invoke("f", b"x").outcome is Outcome.GUEST_TRAP
    finally:
        a.close()
        b.close()
