"""`fnhost db copy`: a SQLite data dir with every kind of state moves into PostgreSQL and works there unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wat_guests as g
from conftest import ROOT

from fnhost import Host, Outcome
from fnhost.control.audit import AuditLog
from fnhost.control.auth import ApiKeys
from fnhost.dbcopy import copy_data_dir
from fnhost.errors import Conflict, NotFound
from fnhost.stores.sessions import SessionStore
from fnhost.triggers import Triggers

KEY = bytes(range(32))


def populated(data_dir: Path, cache: Path) -> dict[str, Any]:
    """A data dir with functions, aliases, kv, queues (one message in flight), secrets, keys, audit, async."""
    with Host(data_dir, cache_dir=cache, master_key=KEY) as host:
        host.deploy("echo", g.ECHO, {"name": "echo"})
        host.deploy("echo", g.ECHO, {"name": "echo", "env": {"V": "2"}})
        host.set_alias("echo", "live", 1)
        host.kv.set("b", "k", b"\x00value")
        first = host.queues.publish("jobs", b"one")
        second = host.queues.publish("jobs", b"two")
        [in_flight] = host.queues.receive("jobs", max_messages=1, visibility_timeout_s=3600)
        host.secrets.set("token", "s3cret")
        result = host.invoke("echo", b"hi")
        keys = host.open_store(ApiKeys)
        _, token = keys.create("ci", {"invoke"})
        log = host.open_store(AuditLog)
        for i in range(5):
            log.record("function.deploy", f"fn-{i}", "ok")
        accepted = Triggers(host).invoke_async("echo", b"later")
        host.open_store(SessionStore).create(keys.list()[0].key_id)  # a console session: not copied
        host.invocations.close()  # flush the batched invocation record
        return {"first": first, "second": second, "in_flight": in_flight.id, "token": token,
                "invocation": result.invocation_id, "async": accepted.id, "head": log.head()}  # fmt: skip


def test_copy_moves_everything_and_it_works_there(tmp_path: Path, postgres_server: Any) -> None:
    before = populated(tmp_path / "data", tmp_path / "cache")
    dsn = postgres_server.new_database()
    report = copy_data_dir(tmp_path / "data", dsn, master_key=KEY)
    assert report.binaries == 1 and report.audit_entries == 5
    assert report.rows["versions"] == 2 and report.rows["queue_messages"] == 2
    assert "console_sessions" not in report.rows  # browsers sign in again on the new database

    with Host(tmp_path / "node", cache_dir=tmp_path / "node-cache", master_key=KEY, database=dsn) as host:
        assert host.get_version("echo").version == 1  # the pinned alias came along
        assert host.invoke("echo", b"on postgres").outcome is Outcome.OK  # the binary came along
        assert host.kv.get("b", "k") == b"\x00value"
        assert host.secrets.get("token") == "s3cret"
        [visible] = host.queues.receive("jobs", max_messages=10)  # the in-flight one stays hidden
        assert visible.id != before["in_flight"] and visible.receive_count == 1
        assert {m.id: m.receive_count for m in host.queues.peek("jobs")}[before["in_flight"]] == 1
        assert host.open_store(ApiKeys).authenticate(f"Bearer {before['token']}").name == "ci"
        log = host.open_store(AuditLog)
        assert log.head() == before["head"] and log.verify().ok
        assert log.record("after.copy", "x", "ok").id == 6  # the chain goes on
        assert host.invocations.store.get(before["invocation"]) is not None
        assert Triggers(host).async_invocations.get(before["async"]).status == "queued"


def test_copy_refuses_a_target_that_holds_data_and_changes_nothing(tmp_path: Path, postgres_server: Any) -> None:
    populated(tmp_path / "data", tmp_path / "cache")
    dsn = postgres_server.new_database()
    with Host(tmp_path / "other", cache_dir=tmp_path / "cache", master_key=KEY, database=dsn) as other:
        other.kv.set("theirs", "k", b"v")
    with pytest.raises(Conflict, match=r"already holds fnhost data .*copy into a new, empty database"):
        copy_data_dir(tmp_path / "data", dsn, master_key=KEY)
    with pytest.raises(NotFound, match=r"holds no fnhost\.db"):
        copy_data_dir(tmp_path / "nothing-here", dsn, master_key=KEY)


def test_the_cli_copies(tmp_path: Path, postgres_server: Any) -> None:
    populated(tmp_path / "data", tmp_path / "cache")
    (tmp_path / "data" / "master.key").write_text(__import__("base64").b64encode(KEY).decode())
    done = subprocess.run(
        [sys.executable, "-m", "fnhost", "db", "copy", "--data-dir", str(tmp_path / "data"),
         "--to", postgres_server.new_database()],
        capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT / "host"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the audit chain verifies (5 entries)" in done.stdout and "queue_messages: 2" in done.stdout
