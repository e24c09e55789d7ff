"""A cluster: several `fnhost serve` nodes (real Hypercorn processes) on one PostgreSQL, each with its own data
and compile-cache dirs, sharing only the database URL and FNHOST_MASTER_KEY. Loopback only, bounded in time."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgres_server import PostgresServer
from test_e2e import HELLO_SRC, _env, fnhost, server

pytestmark = pytest.mark.slow

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def node(tmp_path: Path, index: int, dsn: str) -> AbstractContextManager[str]:
    """One node: `fnhost serve --database DSN`, its own data and cache dirs, ready when /readyz says so."""
    return server(tmp_path / f"node{index}", "--database", dsn, cache_dir=tmp_path / f"cache{index}",
                  env=_env(FNHOST_MASTER_KEY=MASTER_KEY), ready="/readyz")  # fmt: skip


@contextmanager
def cluster(tmp_path: Path, dsn: str, size: int) -> Iterator[tuple[list[str], str]]:
    """`size` nodes, started one after the other; (their URLs, the bootstrap admin token node 0 wrote)."""
    with ExitStack() as stack:
        urls = [stack.enter_context(node(tmp_path, 0, dsn))]
        token = (tmp_path / "node0" / "admin.key").read_text().strip()
        urls += [stack.enter_context(node(tmp_path, i, dsn)) for i in range(1, size)]
        assert not any((tmp_path / f"node{i}" / "admin.key").exists() for i in range(1, size))  # one key
        yield urls, token


def test_deploy_on_one_node_invoke_on_another_alias_change_seen_everywhere(
    tmp_path: Path, postgres_server: Any
) -> None:
    with cluster(tmp_path, postgres_server.new_database(), 3) as (urls, token):
        headers = {"Authorization": f"Bearer {token}"}
        env = _env(FNHOST_URL=urls[0], FNHOST_TOKEN=token)
        assert "deployed hello version 1" in fnhost("deploy", str(HELLO_SRC), env=env).stdout
        r = httpx.get(f"{urls[2]}/fn/hello/hello?name=node2", timeout=30)
        assert (r.status_code, r.json()) == (200, {"message": "Hello, node2!"})
        assert list((tmp_path / "cache2").rglob("*.cwasm"))  # compiled there, from the binary in the database
        assert not (tmp_path / "node2" / "wasm").exists()

        for url in urls:  # every node answers for the same functions and keys
            listed = httpx.get(f"{url}/v1/functions", headers=headers, timeout=10).json()
            assert [f["name"] for f in listed["functions"]] == ["hello"]

        # Version 2 (another manifest), then node 1 pins live back to 1: node 0 serves 1 at once.
        manifest_v2 = (HELLO_SRC / "fnhost.toml").read_text().replace('timeout_ms = 5000', 'timeout_ms = 4000')
        src_v2 = tmp_path / "hello-v2"
        subprocess.run(["cp", "-r", str(HELLO_SRC), str(src_v2)], check=True)
        (src_v2 / "fnhost.toml").write_text(manifest_v2)
        assert "version 2" in fnhost("deploy", str(src_v2), env=env).stdout
        assert httpx.get(f"{urls[0]}/fn/hello/", timeout=10).json()["version"] == "2"
        r = httpx.put(f"{urls[1]}/v1/functions/hello/aliases/live", json={"version": 1}, headers=headers)
        assert r.status_code == 200, r.text
        start = time.monotonic()
        while httpx.get(f"{urls[0]}/fn/hello/", timeout=10).json()["version"] != "1":
            assert time.monotonic() - start < 0.9, "node 0 still serves version 2: no change feed (only the 1 s TTL)"
            time.sleep(0.01)
        print(f"alias change through node 1 served by node 0 after {(time.monotonic() - start) * 1000:.0f} ms")
        assert fnhost("audit", "verify", env=_env(FNHOST_URL=urls[2], FNHOST_TOKEN=token)).returncode == 0


def test_the_database_going_away_is_a_503_and_the_node_recovers_by_itself(tmp_path: Path) -> None:
    try:
        own = PostgresServer()  # its own server: this test stops it
    except FileNotFoundError as e:
        from conftest import missing_toolchain

        missing_toolchain(str(e))
    try:
        with cluster(tmp_path, own.new_database(), 1) as (urls, token):
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{urls[0]}/v1/functions", headers=headers).status_code == 200
            own.pause()
            ready = httpx.get(f"{urls[0]}/readyz", timeout=10)
            assert ready.status_code == 503 and "the database is unreachable" in ready.json()["reason"]
            assert ready.headers["retry-after"] == "1"
            down = httpx.get(f"{urls[0]}/v1/functions", headers=headers, timeout=10)
            assert down.status_code == 503, down.text
            assert "database is unavailable" in down.text and "retry" in down.text
            assert httpx.get(f"{urls[0]}/healthz").status_code == 200  # alive all the same
            own.resume()
            deadline = time.monotonic() + 20
            while httpx.get(f"{urls[0]}/readyz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the node did not recover without a restart"
                time.sleep(0.2)
            assert httpx.get(f"{urls[0]}/v1/functions", headers=headers).status_code == 200
    finally:
        own.stop()
