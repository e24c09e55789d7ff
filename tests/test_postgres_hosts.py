"""Several hosts on one PostgreSQL, as the nodes of a cluster: each with its own data and compile-cache
dirs, sharing only the database and the master key. Real guests, a real server started by the suite."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
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


def test_an_alias_change_on_one_node_is_served_by_the_other(nodes: list[Host]) -> None:
    a, b = nodes
    a.deploy("echo", g.ECHO, {"name": "echo"})
    a.deploy("echo", g.ECHO, {"name": "echo", "env": {"V": "2"}})
    assert b.get_version("echo").version == 2
    a.set_alias("echo", "live", 1)
    b.invoker.invalidate("echo")  # without waiting out the resolve TTL
    assert b.get_version("echo").version == 1


def test_a_node_with_another_master_key_refuses_to_start(nodes: list[Host], postgres_server: Any, tmp_path: Path) -> None:
    a, _ = nodes
    a.secrets.set("token", "s3cret")
    dsn = a.db.dsn  # type: ignore[union-attr]
    with pytest.raises(MasterKeyError, match="must share FNHOST_MASTER_KEY"):
        Host(tmp_path / "stranger", master_key=bytes(range(1, 33)), database=dsn)
    os.environ.pop("FNHOST_MASTER_KEY", None)
    same = Host(tmp_path / "friend", master_key=base64.b64decode(base64.b64encode(KEY)), database=dsn)
    try:
        assert same.secrets.get("token") == "s3cret"
    finally:
        same.close()
