"""Tiered compilation: Winch code at deploy, Cranelift code swapped in from the background, and the
same limits in both tiers (WAT guests; the tier threshold is lowered so they tier)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wat_guests as g

from fnhost import EngineSettings, Host, Outcome
from fnhost.runtime.engine import CRANELIFT, WINCH

TIERED = EngineSettings(baseline_min_bytes=0)

# Counts to 10,000 in a loop, then answers an empty event result: no bulk-memory instructions, so
# its fuel is the same in every tier.
COUNT = g.module("""
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10000))))
    (call $echo_input (local.get 0) (i32.const 0)))
""")


def artifacts(cache: Path, compiler: str) -> list[Path]:
    return list((cache / TIERED.cache_key(compiler)).glob("*.cwasm"))


def test_deploy_serves_winch_code_then_swaps_in_cranelift(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache, engine_settings=TIERED) as host:
        host.deploy("f", g.ECHO, {"name": "f"})
        assert len(artifacts(cache, WINCH)) == 1  # compiled with Winch at deploy
        assert host.invoke("f", b"x").outcome is Outcome.OK
        assert host.wait_for_tier_up(30)
        assert host.compiler_of("f") == CRANELIFT
        assert len(artifacts(cache, CRANELIFT)) == 1
        r = host.invoke("f", b"after")
        assert r.outcome is Outcome.OK and r.output.endswith(b"after")
    with Host(tmp_path / "d", cache_dir=cache, engine_settings=TIERED) as host:  # restart: Cranelift at once
        assert host.invoke("f", b"x").outcome is Outcome.OK
        assert host.compiler_of("f") == CRANELIFT


def test_small_modules_and_untiered_hosts_compile_with_cranelift_only(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(tmp_path / "d", cache_dir=cache) as host:  # default threshold: 1 MiB
        host.deploy("f", g.ECHO, {"name": "f"})
        assert host.compiler_of("f") == CRANELIFT
    assert not (cache / TIERED.cache_key(WINCH)).exists() or not artifacts(cache, WINCH)
    with Host(tmp_path / "e", cache_dir=tmp_path / "c2", engine_settings=EngineSettings(baseline_min_bytes=None)) as h:
        h.deploy("f", g.ECHO, {"name": "f"})
        assert h.compiler_of("f") == CRANELIFT


def test_winch_and_cranelift_artifacts_are_cached_apart(tmp_path: Path) -> None:
    assert TIERED.cache_key(WINCH) != TIERED.cache_key(CRANELIFT)
    assert EngineSettings().cache_key() == TIERED.cache_key()  # the threshold does not shape code


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Host]]:
    """One host per tier; the Winch host never tiers up."""
    winch = Host(tmp_path / "w", cache_dir=tmp_path / "cache", engine_settings=TIERED)
    monkeypatch.setattr(winch._compiler, "tier_up", lambda *a: None)  # white-box: keep the Winch code
    cranelift = Host(tmp_path / "c", cache_dir=tmp_path / "cache", engine_settings=EngineSettings(baseline_min_bytes=None))
    yield {WINCH: winch, CRANELIFT: cranelift}
    winch.close()
    cranelift.close()


def deploy_both(hosts: dict[str, Host], wasm: bytes, **limits: int) -> None:
    for compiler, host in hosts.items():
        host.deploy("f", wasm, {"name": "f", "limits": limits})
        assert host.compiler_of("f") == compiler


def test_fuel_is_counted_the_same_in_both_tiers(hosts: dict[str, Host]) -> None:
    deploy_both(hosts, COUNT)
    fuel = {c: h.invoke("f", b"").fuel_consumed for c, h in hosts.items()}
    assert all(h.invoke("f", b"").outcome is Outcome.OK for h in hosts.values())
    assert fuel[WINCH] == fuel[CRANELIFT] > 10_000 * 5


def test_fuel_budget_stops_both_tiers_at_the_same_count(hosts: dict[str, Host]) -> None:
    deploy_both(hosts, g.LOOP, timeout_ms=60_000, fuel=5_000_000)
    for host in hosts.values():
        r = host.invoke("f")
        assert (r.outcome, r.fuel_consumed) == (Outcome.FUEL_EXHAUSTED, 5_000_000)


def test_epoch_deadline_stops_both_tiers_in_time(hosts: dict[str, Host]) -> None:
    deploy_both(hosts, g.LOOP, timeout_ms=200, fuel=10**15)
    for host in hosts.values():
        host.invoke("f")  # the first call of a process also pays for lazy set-up
        t0 = time.monotonic()
        r = host.invoke("f")
        assert r.outcome is Outcome.TIMEOUT and "200 ms" in (r.error or "")
        assert time.monotonic() - t0 < 0.4


def test_known_difference_bulk_memory_costs_one_fuel_per_byte_only_in_cranelift(hosts: dict[str, Host]) -> None:
    """wasmtime 50: Cranelift charges memory.copy/memory.fill one unit of fuel per byte, Winch a flat
    cost. A 100 KB payload copied by the echo guest shows it (docs/performance.md, Tiers)."""
    deploy_both(hosts, g.ECHO, memory_mb=16)
    payload = b"x" * 100_000
    fuel = {c: h.invoke("f", payload).fuel_consumed for c, h in hosts.items()}
    assert fuel[CRANELIFT] - fuel[WINCH] >= 100_000


def test_epoch_deadlines_follow_the_wall_clock_when_the_ticker_wakes_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load (a background compile on every core) the ticker thread wakes late; counting its
    wake-ups stretched a 3 s deadline past 3.5 s. Ticks now follow the clock."""
    import threading

    import wasmtime

    from fnhost.runtime import engine as engine_module

    class LateEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            return super().wait(None if timeout is None else timeout * 4)  # wakes 4x late

    monkeypatch.setattr(engine_module.threading, "Event", LateEvent)
    engine = engine_module.make_engine(EngineSettings())
    ticker = engine_module.EpochTicker([engine], 5)
    try:
        store = wasmtime.Store(engine)
        store.set_fuel(10**15)
        store.set_epoch_deadline(ticker.ticks_for(200))
        instance = wasmtime.Instance(store, wasmtime.Module(engine, "(module (func (export \"f\") (loop $l (br $l))))"), [])
        t0 = time.monotonic()
        with pytest.raises(wasmtime.Trap):
            instance.exports(store)["f"](store)
        assert time.monotonic() - t0 < 0.4  # counting wake-ups: ~0.8 s
    finally:
        ticker.stop()


def test_one_compile_per_artifact_when_hosts_race(tmp_path: Path) -> None:
    """Hosts of one process deploying the same wasm (a test suite, parallel deploys) compile it once."""
    import threading

    from fnhost.runtime.engine import CompileCache, make_engine

    settings = EngineSettings()
    engine = make_engine(settings)
    caches = [CompileCache(tmp_path, engine, settings) for _ in range(4)]
    calls = []

    def wasm() -> bytes:
        calls.append(1)
        time.sleep(0.1)  # a compile in progress while the others arrive
        return g.ECHO

    results: list[bool] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.load("x" * 64, False, wasm)[1])) for c in caches]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(calls) == 1 and sorted(results) == [False, True, True, True]
