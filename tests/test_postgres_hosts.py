"""Several hosts on one PostgreSQL, as the nodes of a cluster: each with its own data and compile-cache
dirs, sharing only the database and the master key. Real guests, a real server started by the suite."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wat_guests as g
from conftest import COMPILED, build_or_skip

from fnhost import Host, Outcome
from fnhost.stores import MasterKeyError

GUESTS = Path(__file__).resolve().parents[1] / "guests"
KEY = bytes(range(32))


def two_nodes(dsn: str, tmp_path: Path, shared_cache: Path | None = None) -> list[Host]:
    return [Host(tmp_path / f"node{i}", cache_dir=shared_cache or tmp_path / f"cache{i}", master_key=KEY, database=dsn)
            for i in range(2)]  # fmt: skip


@pytest.fixture
def nodes(postgres_server: Any, tmp_path: Path) -> Iterator[list[Host]]:
    hosts = two_nodes(postgres_server.new_database(), tmp_path)
    yield hosts
    for h in hosts:
        h.close()


def test_a_version_deployed_on_one_node_runs_on_another_that_never_saw_it(nodes: list[Host], tmp_path: Path) -> None:
    a, b = nodes
    a.deploy("echo", g.ECHO, {"name": "echo"})
    result = b.invoke("echo", b"through node 1")
    assert result.outcome is Outcome.OK, result.error
    assert result.output.endswith(b"through node 1")
    assert not (tmp_path / "node1" / "wasm").exists()  # the binary came from the database
    assert list((tmp_path / "cache1").rglob("*.cwasm"))  # and was compiled once, on this node
    assert [f.name for f in b.list_functions()] == ["echo"]


def test_state_is_shared_kv_counts_across_nodes(postgres_server: Any, tmp_path: Path) -> None:
    built = build_or_skip(GUESTS / "python" / "counter")
    # The suite's compile cache is shared here only to save a 20 s compile of the Python component.
    a, b = two_nodes(postgres_server.new_database(), tmp_path, shared_cache=COMPILED)
    try:
        a.deploy("counter", built.wasm_path.read_bytes(), built.manifest)
        incr = b'{"op": "incr", "key": "hits"}'
        values = [json.loads(h.invoke("counter", incr).output)["value"] for h in (a, b, a, b)]
        assert values == [1, 2, 3, 4]
    finally:
        a.close()
        b.close()


def served_version(host: Host) -> int:
    result = host.invoke("echo", b"")
    assert result.outcome is Outcome.OK, result.error
    return result.version


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "not seen in time"
        time.sleep(0.005)
    return time.monotonic() - start


def test_an_alias_change_on_one_node_is_served_by_the_other_at_once(nodes: list[Host]) -> None:
    a, b = nodes
    b.resolve_ttl_s = 3600.0  # so only the change feed can tell node 1
    a.deploy("echo", g.ECHO, {"name": "echo"})
    assert served_version(b) == 1
    a.deploy("echo", g.ECHO, {"name": "echo", "env": {"V": "2"}})
    wait_until(lambda: served_version(b) == 2)
    a.set_alias("echo", "live", 1)
    seen_after = wait_until(lambda: served_version(b) == 1)
    print(f"alias change on node 0 served by node 1 after {seen_after * 1000:.1f} ms")


def test_a_function_deleted_and_redeployed_elsewhere_never_runs_its_old_code(nodes: list[Host]) -> None:
    a, b = nodes
    b.resolve_ttl_s = 3600.0
    a.deploy("echo", g.ECHO, {"name": "echo"})
    assert b.invoke("echo", b"x").outcome is Outcome.OK  # node 1 prepared version 1
    a.delete_function("echo")
    a.deploy("echo", g.TRAP, {"name": "echo"})  # a new version 1, other code
    wait_until(lambda: b.invoke("echo", b"x").outcome is Outcome.GUEST_TRAP)


def test_a_node_with_another_master_key_refuses_to_start(nodes: list[Host], postgres_server: Any, tmp_path: Path) -> None:
    a, _ = nodes
    a.secrets.set("token", "s3cret")
    dsn = a.open_store(lambda db: db.dsn)  # type: ignore[union-attr]
    with pytest.raises(MasterKeyError, match="must share FNHOST_MASTER_KEY"):
        Host(tmp_path / "stranger", master_key=bytes(range(1, 33)), database=dsn)
    os.environ.pop("FNHOST_MASTER_KEY", None)
    same = Host(tmp_path / "friend", master_key=base64.b64decode(base64.b64encode(KEY)), database=dsn)
    try:
        assert same.secrets.get("token") == "s3cret"
    finally:
        same.close()


def test_a_cluster_wide_concurrency_limit_holds_across_nodes(nodes: list[Host]) -> None:
    import threading

    a, b = nodes
    a.deploy("busy", g.LOOP, {"name": "busy", "limits": {"timeout_ms": 600, "fuel": 10**15,
                                                          "cluster_max_concurrency": 1}})  # fmt: skip
    first: list[Any] = []
    runner = threading.Thread(target=lambda: first.append(a.invoke("busy")))
    runner.start()
    wait_until(lambda: a.cluster_slots_in_use("busy") == 1)
    refused = b.invoke("busy")  # the other node: its own process has nothing running
    assert refused.outcome is Outcome.THROTTLED
    assert "cluster-wide concurrency limit (1" in (refused.error or "")
    runner.join(timeout=10)
    assert first[0].outcome is Outcome.TIMEOUT  # the loop ran out its time, then gave the slot back
    a.deploy("echo", g.ECHO, {"name": "echo"})  # without the limit: no slot, no round trip
    b.resolve_ttl_s = 3600.0
    b.invoke("echo", b"")
    warm = b.open_store(lambda db: db.round_trips_of_this_thread)  # type: ignore[union-attr]
    assert b.invoke("echo", b"").outcome is Outcome.OK
    assert b.open_store(lambda db: db.round_trips_of_this_thread) == warm  # type: ignore[union-attr]  # a cached alias: none at all
