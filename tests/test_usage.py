"""Usage rollups (stores/usage.py) on both backends, as the recorder writes them, and read back merged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CACHE_DIR
from test_api import Api, start_api

from fnhost.build import build_guest
from fnhost.control import pack_bundle
from fnhost.recorder import InvocationRecorder
from fnhost.stores import InvalidArgument, InvocationRecord, InvocationStore
from fnhost.stores.database import PostgresDatabase
from fnhost.stores.usage import DURATION_BUCKETS_MS, UsageRetention, UsageStore, bucket_of, totals

HOUR = 3600
T0 = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight


def rec(i: int, function: str = "hello", *, at: float = T0 + 10, outcome: str = "ok", duration_ms: float = 2.0,
        memory_mb: int = 128, fuel: int = 1000) -> InvocationRecord:
    billed = max(1, -int(-duration_ms // 1))
    return InvocationRecord(
        id=f"{i:032x}", function=function, version=1, trigger="invoke", outcome=outcome, error=None,
        started_at=at, duration_ms=duration_ms, billed_ms=billed, fuel_consumed=fuel, memory_used_bytes=0,
        memory_limit_mb=memory_mb, logs="", report="",
    )


def test_buckets_cover_every_duration_in_order() -> None:
    assert bucket_of(0.0) == 0 and bucket_of(DURATION_BUCKETS_MS[0]) == 0
    for k, edge in enumerate(DURATION_BUCKETS_MS):
        assert bucket_of(edge) == k, edge  # an edge belongs to the bucket it closes
        assert bucket_of(edge * 1.01) == k + 1
    assert bucket_of(10**9) == len(DURATION_BUCKETS_MS)  # overflow


def test_rollups_per_hour_and_day_merge_outcomes_and_batches(any_db: object) -> None:
    store = UsageStore(any_db)  # type: ignore[arg-type]
    # two batches, as two nodes (or two flushes) would write them, into the same buckets
    store.record_many([rec(i, duration_ms=float(i + 1)) for i in range(50)])
    store.record_many([rec(100 + i, duration_ms=float(i + 51)) for i in range(50)])
    store.record_many([rec(200, outcome="timeout", duration_ms=3000.0, memory_mb=256)])
    store.record_many([rec(201, outcome="throttled", duration_ms=0.0)])
    store.record_many([rec(300, at=T0 + HOUR + 5, duration_ms=7.0)])  # the next hour, the same day
    store.record_many([rec(400, function="team-a/hello", duration_ms=9.0)])

    hours = store.query(period="hour", since=T0, until=T0 + 2 * HOUR, namespace="default")
    assert [(r.function, r.start) for r in hours] == [("hello", T0), ("hello", T0 + HOUR)]
    first = hours[0]
    assert first.invocations == 102 and first.errors == 1 and first.throttles == 1
    assert first.outcomes == {"ok": 100, "timeout": 1, "throttled": 1}
    # durations 1..100 ms, one of 3000 and one of 0: p50 ~ 50, p99 ~ 100, within the buckets' factor √2
    p50, p99 = first.percentile(0.5), first.percentile(0.99)
    assert p50 is not None and 50 / 2**0.5 <= p50 <= 50 * 2**0.5
    assert p99 is not None and 100 / 2**0.5 <= p99 <= 3000
    assert first.duration_ms_max == 3000.0
    # Lambda's GB-s: billed ms (1..100, 3000, 1 for the throttle) x memory GB
    billed_mb_ms = sum(range(1, 101)) * 128 + 3000 * 256 + 1 * 128
    assert first.billed_mb_ms == billed_mb_ms and first.gb_seconds == pytest.approx(billed_mb_ms / 1024 / 1000)
    assert first.fuel == 102 * 1000

    days = store.query(period="day", since=T0, until=T0 + 86400, namespace="default")
    assert len(days) == 1 and days[0].invocations == 103  # both hours in one day
    assert [r.function for r in store.query(period="day", since=T0, until=T0 + 86400)] == ["hello", "team-a/hello"]
    only = store.query(period="day", since=T0, until=T0 + 86400, namespace="team-a")
    assert [(r.function, r.invocations) for r in only] == [("team-a/hello", 1)]
    assert store.query(period="hour", since=T0, until=T0 + 86400, function="nosuch") == []
    assert totals(hours)[0].invocations == 103
    assert first.to_dict()["duration_ms"]["max"] == 3000.0


def test_one_duration_is_reported_exactly(any_db: object) -> None:
    store = UsageStore(any_db)  # type: ignore[arg-type]
    store.record_many([rec(i, duration_ms=0.4) for i in range(10)])
    (r,) = store.query(period="hour", since=T0, until=T0 + HOUR)
    assert r.percentile(0.5) == pytest.approx(0.4) and r.percentile(0.99) == pytest.approx(0.4)


def test_bad_queries_say_what_to_change(any_db: object) -> None:
    store = UsageStore(any_db)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="period must be one of hour, day"):
        store.query(period="minute", since=T0, until=T0 + HOUR)
    with pytest.raises(InvalidArgument, match="must be later than since"):
        store.query(period="hour", since=T0, until=T0)
    with pytest.raises(InvalidArgument, match="use period=day"):
        store.query(period="hour", since=T0, until=T0 + 400 * 86400)
    store.record_many([rec(i, function=f"f{i}") for i in range(3)])  # many functions: a huge answer is refused
    assert len(store.query(period="hour", since=T0, until=T0 + HOUR, max_rows=3)) == 3
    with pytest.raises(InvalidArgument, match="more than 2 usage rows; narrow since/until, ask for one function"):
        store.query(period="hour", since=T0, until=T0 + HOUR, max_rows=2)


def test_purge_keeps_what_retention_allows(any_db: object) -> None:
    store = UsageStore(any_db)  # type: ignore[arg-type]
    store.record_many([rec(1, at=T0 + 10), rec(2, at=T0 + 20 * 86400)])
    retention = UsageRetention(hourly_days=7, daily_days=30)
    assert store.purge(retention, now=T0 + 20 * 86400 + 60) == 1  # the old hour only
    assert len(store.query(period="hour", since=T0, until=T0 + 21 * 86400)) == 1
    assert len(store.query(period="day", since=T0, until=T0 + 21 * 86400)) == 2
    assert store.purge(retention, now=T0 + 45 * 86400) == 2  # the first day and the later hour
    assert [r.start for r in store.query(period="day", since=T0, until=T0 + 46 * 86400)] == [T0 + 20 * 86400]
    with pytest.raises(InvalidArgument, match="hourly retention"):
        UsageRetention(hourly_days=0)


def test_the_recorder_writes_usage_in_the_records_transaction(any_db: object) -> None:
    """Usage costs one round trip per batch on PostgreSQL, and is stored with the records or not at all."""
    invocations = InvocationStore(any_db)  # type: ignore[arg-type]
    usage = UsageStore(any_db)  # type: ignore[arg-type]
    batch = [rec(i, function=f"f{i % 3}") for i in range(30)]

    def round_trips(recorder: InvocationRecorder, records: list[InvocationRecord]) -> int:
        before = any_db.round_trips_of_this_thread if isinstance(any_db, PostgresDatabase) else 0
        for r in records:
            recorder.record(r)
        recorder.flush()
        return (any_db.round_trips_of_this_thread if isinstance(any_db, PostgresDatabase) else 0) - before

    plain = InvocationRecorder(invocations, interval_s=3600)
    with_usage = InvocationRecorder(invocations, usage, interval_s=3600)
    try:
        round_trips(plain, [rec(1000)])  # the first batch also counts the table's bytes once
        without = round_trips(plain, batch)
        added = round_trips(with_usage, [rec(100 + i, function=f"f{i % 3}") for i in range(30)])
    finally:
        plain.close()
        with_usage.close()
    if isinstance(any_db, PostgresDatabase):
        assert added == without + 1, (without, added)
    rollups = usage.query(period="hour", since=T0, until=T0 + HOUR)
    assert sorted((r.function, r.invocations) for r in rollups) == [("f0", 10), ("f1", 10), ("f2", 10)]
    # the plain recorder's records are not counted: usage is what the host's recorder (with a store) wrote
    # a batch whose usage cannot be added leaves no records behind either (one transaction)
    broken = InvocationRecorder(invocations, usage, interval_s=3600)
    try:
        broken.record(dataclasses.replace(rec(500), duration_ms=float("nan")))  # no bucket: the rollup fails after the records' insert
        broken.flush()
    finally:
        broken.close()
    assert invocations.get(f"{500:032x}") is None
    assert sum(r.invocations for r in usage.query(period="hour", since=T0, until=T0 + HOUR)) == 30


# GET /v1/usage through the real app and real guests ------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def usage_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app: `hello` (Rust, 128 MB) invoked 3 times, `chaos` (16 MB) failing twice, and `hello` of team-b."""
    wasm = {n: build_guest(ROOT / "guests" / "rust" / n, cache_dir=CACHE_DIR).wasm_path.read_bytes()
            for n in ("hello", "chaos")}
    api, stop = start_api(tmp_path_factory.mktemp("usage") / "data")
    assert api.deploy("hello", pack_bundle('name = "hello"\n', wasm["hello"])).status_code == 201
    chaos = 'name = "chaos"\n[limits]\nmemory_mb = 16\nfuel = 200000000\n'
    assert api.deploy("chaos", pack_bundle(chaos, wasm["chaos"])).status_code == 201
    api.team_b = api.call("POST", "/v1/keys", api.admin, json={"name": "b", "scopes": ["admin"], "namespace": "team-b"}).json()["token"]  # type: ignore[attr-defined]
    r = api.call("PUT", "/v1/namespaces/team-b/functions/hello", api.team_b, content=pack_bundle('name = "hello"\n', wasm["hello"]))  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    for _ in range(3):
        assert api.call("POST", "/v1/functions/hello/invoke", api.admin, content=b"{}").status_code == 200
    for command in ("trap", "loop"):
        assert api.call("POST", "/v1/functions/chaos/invoke", api.admin, content=command.encode()).status_code == 502
    assert api.call("POST", "/v1/namespaces/team-b/functions/hello/invoke", api.team_b, content=b"{}").status_code == 200  # type: ignore[attr-defined]
    yield api
    stop()


def test_usage_api_reports_each_function_of_the_namespace(usage_api: Api) -> None:
    r = usage_api.call("GET", "/v1/usage", usage_api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["namespace"] == "default" and body["period"] == "hour"
    by_name = {t["function"]: t for t in body["totals"]}
    assert set(by_name) == {"hello", "chaos"}  # team-b's hello is not in default's usage
    hello, chaos = by_name["hello"], by_name["chaos"]
    assert (hello["invocations"], hello["errors"], hello["outcomes"]) == (3, 0, {"ok": 3})
    assert (chaos["invocations"], chaos["errors"]) == (2, 2)
    assert chaos["outcomes"] == {"fuel_exhausted": 1, "guest_trap": 1}
    records = usage_api.call("GET", "/v1/functions/hello/invocations", usage_api.admin).json()["invocations"]
    assert hello["billed_ms"] == sum(i["billed_ms"] for i in records)
    assert hello["gb_seconds"] == pytest.approx(hello["billed_ms"] * 128 / 1024 / 1000, abs=1e-6)
    assert hello["fuel"] == sum(i["fuel_consumed"] for i in records) > 0
    assert 0 < hello["duration_ms"]["p50"] <= hello["duration_ms"]["p99"] <= hello["duration_ms"]["max"]
    assert [row["function"] for row in body["usage"]] == ["chaos", "hello"]  # one hour each
    day = usage_api.call("GET", "/v1/usage?period=day&function=hello", usage_api.admin).json()
    assert [(u["function"], u["invocations"], u["start"] % 86400) for u in day["usage"]] == [("hello", 3, 0)]
    team_b = usage_api.call("GET", "/v1/namespaces/team-b/usage", usage_api.team_b).json()  # type: ignore[attr-defined]
    assert [(t["function"], t["invocations"]) for t in team_b["totals"]] == [("hello", 1)]


def test_usage_api_shows_a_key_only_what_it_may_read(usage_api: Api) -> None:
    limited = usage_api.key("invoke", functions=["hello"])
    seen = usage_api.call("GET", "/v1/usage", limited).json()
    assert [t["function"] for t in seen["totals"]] == ["hello"]
    r = usage_api.call("GET", "/v1/usage?function=chaos", limited)
    assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"]  # as if it did not exist
    # another namespace's admin sees nothing of default's, neither listed nor by name
    other = usage_api.call("GET", "/v1/usage", usage_api.team_b).json()  # type: ignore[attr-defined]
    assert other["usage"] == [] and other["totals"] == []
    assert usage_api.call("GET", "/v1/usage?function=hello", usage_api.team_b).status_code == 404  # type: ignore[attr-defined]
    assert usage_api.call("GET", "/v1/usage").status_code == 401


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("period=minute", "period: must be one of hour, day"),
        ("since=yesterday", "neither Unix seconds nor an ISO 8601"),
        ("since=1e400", "out of range"),
        ("until=nan", "out of range"),
        ("since=2026-12-02T10:00:00Z&until=2026-12-01", "must be later than since"),
        ("since=0&until=2000000000", "narrow since/until or use period=day"),
        ("function=Bad%20Name", "is not a function name"),
        ("function=nosuch", "does not exist"),
    ],
)
def test_usage_api_refuses_bad_queries_naming_the_fix(usage_api: Api, query: str, words: str) -> None:
    r = usage_api.call("GET", f"/v1/usage?{query}", usage_api.admin)
    assert 400 <= r.status_code < 500 and words in r.json()["error"]["message"], r.text


def test_usage_of_the_library_merges_like_the_api(usage_api: Api) -> None:
    """`Host.usage` is the call an embedder makes; the API is a filter over it."""
    rollups = usage_api.host.usage(period="day")
    assert {r.function: r.invocations for r in rollups} == {"chaos": 2, "hello": 3, "team-b/hello": 1}
    assert [r.invocations for r in usage_api.host.usage(period="day", namespace="team-b")] == [1]
