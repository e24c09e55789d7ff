"""The memory attacks of issue 9 §3, measured against a real `fnhost serve` on 127.0.0.1 only.

    python bench/attacks.py [slow-bodies] [logs] [warm]   (default: all three)

- slow-bodies: 150 connections POST a 6 MiB body without a key to a private function's URL, each
  trickling it in (256 KiB every 0.5 s); prints the server's peak RSS growth and what the
  callers were answered.
- logs: a function whose invocations write 64 MiB of logs each (`limits.max_log_bytes` 64 MiB) is
  invoked 8 times; then `GET /v1/functions/{name}/invocations?limit=8`; prints the RSS growth
  during the listing, the bytes it returned and the database's size.
- warm: a function with `instance_reuse` whose instance touches 250 MiB is deployed 5 times, each
  version invoked once (so each leaves a warm instance); prints the idle RSS growth.

RSS is the server process's VmRSS (/proc), sampled every 50 ms. Every attack is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "bench"), str(ROOT / "tests")]

from http_load import CACHE, free_port, wait_ready  # noqa: E402
from wat_guests import FD_WRITE  # noqa: E402
from wat_guests import module as wasm  # noqa: E402

from fnhost import Host  # noqa: E402
from fnhost.control import pack_bundle  # noqa: E402

MiB = 1 << 20
# HTTP: 200, no headers, empty body. Event: empty output.
ANSWER = '''
  (data (i32.const 16) "\\00\\c8\\00\\00\\00\\00\\00\\00\\00\\00\\00")
  (func (export "fnhost_handle_http") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 11)))
'''
# 1024 lines of 64 KiB on stdout: 64 MiB of logs.
LOG_FLOOD = """
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (local $i i32)
    (i32.store (i32.const 100) (i32.const 65536))
    (i32.store (i32.const 104) (i32.const 65536))
    (memory.fill (i32.const 65536) (i32.const 65) (i32.const 65535))
    (i32.store8 (i32.const 131071) (i32.const 10))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))
    (call $echo_input (local.get 0) (i32.const 0)))
"""
# Grows its memory to 250 MiB and touches every page, once per instance.
BIG_WARM = """
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (if (i32.lt_u (memory.size) (i32.const 4000))
      (then (drop (memory.grow (i32.sub (i32.const 4000) (memory.size))))
            (memory.fill (i32.const 131072) (i32.const 1) (i32.const 261881856))))
    (call $echo_input (local.get 0) (i32.const 0)))
"""


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    """The peak RSS of `pid` while the block runs (sampled every 50 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss(pid), threading.Event()
        self.start = self.peak

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))


@contextmanager
def serve(data: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fnhost", "serve", "--port", str(port), "--data-dir", str(data),
         "--cache-dir", str(CACHE / "compiled")],
        env={**os.environ, "PYTHONPATH": str(ROOT / "host")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", proc)
        yield url, proc, (data / "admin.key").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(30)


def slow_bodies(data: Path, connections: int = 150, size: int = 6 * MiB) -> None:
    with Host(data, cache_dir=CACHE / "compiled") as host:
        host.deploy("private", wasm(ANSWER), {"name": "private"})
    with serve(data) as (url, proc, _):
        port = int(url.rsplit(":", 1)[1])
        answers: Counter[str] = Counter()
        lock = threading.Lock()

        def attacker() -> None:
            answer = "no answer"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                    s.sendall(f"POST /fn/private/ HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
                    chunk = b"x" * (256 * 1024)
                    s.setblocking(False)
                    sent, got = 0, b""
                    deadline = time.monotonic() + 40
                    while sent < size and time.monotonic() < deadline:
                        with contextlib.suppress(BlockingIOError):
                            sent += s.send(chunk[: size - sent])
                        try:
                            got += s.recv(65536)
                            if got:
                                break
                        except BlockingIOError:
                            pass
                        time.sleep(0.5)
                    s.setblocking(True)
                    s.settimeout(60)
                    while b"\r\n" not in got:
                        more = s.recv(65536)
                        if not more:
                            break
                        got += more
                    answer = got.split(b"\r\n", 1)[0].decode() if got else "closed"
            except OSError as e:
                answer = f"{type(e).__name__}"
            with lock:
                answers[answer] += 1

        with PeakRss(proc.pid) as peak:
            threads = [threading.Thread(target=attacker) for _ in range(connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        print(f"slow-bodies: {connections} keyless {size // MiB} MiB bodies trickled in: RSS {peak.start / MiB:.0f} MiB"
              f" -> peak {peak.peak / MiB:.0f} MiB (+{(peak.peak - peak.start) / MiB:.0f} MiB); answers: "
              + ", ".join(f"{k} x{v}" for k, v in answers.most_common()))  # fmt: skip


def logs(data: Path, invocations: int = 8) -> None:
    with Host(data, cache_dir=CACHE / "compiled") as host:
        host.deploy("chatty", wasm(LOG_FLOOD, FD_WRITE), {"name": "chatty", "limits": {"max_log_bytes": 64 * MiB}})
    with serve(data) as (url, proc, token), httpx.Client(base_url=url, timeout=300) as client:
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(invocations):
            r = client.post("/v1/functions/chatty/invoke", headers=auth)
            assert r.status_code == 200, r.text
        time.sleep(1)
        with PeakRss(proc.pid) as peak:
            r = client.get(f"/v1/functions/chatty/invocations?limit={invocations}", headers=auth)
        listed = r.json().get("invocations", [])
        db = sum(p.stat().st_size for p in data.glob("fnhost.db*"))
        stored = sum(len(i.get("logs", "")) for i in listed)
        print(f"logs: {invocations} invocations x 64 MiB of logs; listing ?limit={invocations}: RSS {peak.start / MiB:.0f} "
              f"MiB -> peak {peak.peak / MiB:.0f} MiB (+{(peak.peak - peak.start) / MiB:.0f} MiB), answered "
              f"{len(r.content) / MiB:.1f} MiB ({len(listed)} records, {stored / MiB:.1f} MiB of logs); "
              f"database {db / MiB:.0f} MiB")  # fmt: skip


def warm(data: Path, versions: int = 5) -> None:
    with serve(data) as (url, proc, token), httpx.Client(base_url=url, timeout=120) as client:
        auth = {"Authorization": f"Bearer {token}"}
        before = rss(proc.pid)
        for v in range(versions):
            manifest = f'name = "big"\n[env]\nV = "{v}"\n[limits]\nmemory_mb = 300\ninstance_reuse = 100\n'
            r = client.put("/v1/functions/big", headers=auth, content=pack_bundle(manifest, wasm(BIG_WARM)))
            assert r.status_code == 201, r.text
            r = client.post("/v1/functions/big/invoke", headers=auth)
            assert r.status_code == 200, r.text
        time.sleep(1)
        idle = rss(proc.pid)
        print(f"warm: {versions} versions of a 250 MiB instance_reuse function, each invoked once: idle RSS "
              f"{before / MiB:.0f} MiB -> {idle / MiB:.0f} MiB (+{(idle - before) / MiB:.0f} MiB)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("attacks", nargs="*", help="slow-bodies, logs, warm (default: all three)")
    args = ap.parse_args()
    for attack in args.attacks or ["slow-bodies", "logs", "warm"]:
        with tempfile.TemporaryDirectory() as tmp:
            {"slow-bodies": slow_bodies, "logs": logs, "warm": warm}[attack](Path(tmp) / "data")


if __name__ == "__main__":
    main()
