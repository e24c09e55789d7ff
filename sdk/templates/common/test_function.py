"""Tests of {{name}}: build it, deploy it on a host of your own, call it.

Run them with `python -m pytest test_function.py` in this directory, with fnhost importable (its
checkout's `.venv/bin/python -m pytest ...`, or after `pip install -e <fnhost checkout>`).
"""

import json
from pathlib import Path

import pytest

from fnhost import Host, Outcome
from fnhost.build import build_guest, default_cache_dir

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fn(tmp_path):
    built = build_guest(HERE)  # cached: a rebuild without changes is a file lookup
    host = Host(tmp_path / "data", cache_dir=default_cache_dir() / "compiled")
    host.deploy(built.manifest.name, built.wasm_path.read_bytes(), built.manifest)
    yield host, built.manifest.name
    host.close()


def test_http_greets_and_counts_visits(fn):
    host, name = fn
    for visits in (1, 2):
        r = host.invoke_http(name, "GET", "/hello?name=you", [], b"")
        assert r.outcome is Outcome.OK, r.error
        assert r.response.status == 200
        assert json.loads(r.response.body) == {"message": "Hello, you!", "visits": visits}


def test_event_reports_the_visits(fn):
    host, name = fn
    assert json.loads(host.invoke(name, b"{}").output) == {"visits": 0}
    host.invoke_http(name, "GET", "/hello", [], b"")
    r = host.invoke(name, b"{}")
    assert r.outcome is Outcome.OK, r.error
    assert json.loads(r.output) == {"visits": 1}
