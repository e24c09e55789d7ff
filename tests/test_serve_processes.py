"""`fnhost serve --processes 2` (real Hypercorn, loopback): both processes answer, `/metrics` covers
the whole server, a killed process is replaced, and SIGTERM stops them all with status 0."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import COMPILED
from test_e2e import _env, _free_port

from fnhost import Host
from fnhost.build import build_guest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROCESS_HEADER = "x-fnhost-process"


def _deploy_hello(data_dir: Path) -> None:
    built = build_guest(ROOT / "guests" / "c" / "hello")
    manifest = {**built.manifest.to_dict(), "name": "hello", "http": {"public": True}}
    with Host(data_dir, cache_dir=COMPILED) as host:
        host.deploy("hello", built.wasm_path.read_bytes(), manifest)


def _wait_for(check: Callable[[], bool], what: str, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}\n{log.read_text()}")
        time.sleep(0.05)


def _sample(metrics: str, series: str) -> float | None:
    """The value of one series in a Prometheus text exposition (None if absent)."""
    m = re.search(rf"^{re.escape(series)} (\S+)$", metrics, re.M)
    return float(m.group(1)) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_share_the_port_and_the_metrics(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _deploy_hello(data_dir)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fnhost", "serve", "--processes", "2", "--port", str(port),
             "--data-dir", str(data_dir), "--cache-dir", str(COMPILED), "--workers", "2"],
            env=_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = httpx.Client(timeout=5)
    sent = 0
    pids: set[int] = set()

    def hello() -> int:
        """One request on a fresh connection (so either process may accept it); the answering pid."""
        nonlocal sent
        r = httpx.get(f"{url}/fn/hello/hello", params={"name": "p"}, timeout=30)  # a busy box: a first call can take 5 s
        sent += 1
        assert r.json() == {"message": "Hello, p!"}
        return int(r.headers[PROCESS_HEADER])

    def answers() -> bool:
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            pids.add(hello())
        return len(pids) == 2 or proc.poll() is not None

    try:
        _wait_for(answers, "both server processes answering", log)
        assert proc.poll() is None and len(pids) == 2 and proc.pid not in pids

        # async invokes: accepted by either process, run by the triggers of whichever claims them
        auth = {"Authorization": f"Bearer {(data_dir / 'admin.key').read_text().strip()}"}
        metrics = client.get(f"{url}/metrics", headers=auth).text  # function names: with a key only
        assert _sample(metrics, 'fnhost_invocations_total{function="hello",outcome="ok",trigger="http"}') == sent
        assert _sample(metrics, "fnhost_invocations_in_flight") == 0  # livesum: one series, no pid label
        event = {**auth, "X-Fnhost-Invocation-Type": "Event"}
        accepted_by: set[int] = set()
        submitted = 0
        while len(accepted_by) < 2 and submitted < 100:
            r = httpx.post(f"{url}/v1/functions/hello/invoke", content=b'{"name": "a"}', headers=event, timeout=5)
            assert r.status_code == 202, r.text
            submitted += 1
            accepted_by.add(int(r.headers[PROCESS_HEADER]))
        assert accepted_by == pids

        def all_ran() -> bool:
            text = client.get(f"{url}/metrics", headers=auth).text
            return _sample(text, 'fnhost_async_succeeded_total{function="hello"}') == submitted

        _wait_for(all_ran, "the async invokes run", log)
        metrics = client.get(f"{url}/metrics", headers=auth).text
        assert _sample(metrics, 'fnhost_async_submitted_total{function="hello"}') == submitted

        killed = pids.pop()
        os.kill(killed, signal.SIGKILL)
        _wait_for(lambda: not _alive(killed), f"pid {killed} reaped", log)
        survivors = set(pids)
        _wait_for(lambda: answers() and not pids <= survivors, "a new process in place of the killed one", log)
        assert proc.poll() is None and killed not in pids
        assert f"(pid {killed}) was killed by SIGKILL; starting another" in log.read_text()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert "fnhost stopped" in log.read_text()
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pid in pids:  # children the parent did not get to stop
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
