"""SQLite against PostgreSQL, one to three nodes, side by side in one run, on 127.0.0.1 only.

    python bench/cluster.py [--seconds 5] [--connections 8] [--messages 2000] [--nodes 3]

Starts a PostgreSQL server of its own (Debian's, as the test suite does: tests/postgres_server.py),
then prints:
- HTTP req/s of the C hello (a core module) and the Python hello (a component) through `fnhost
  serve`: SQLite with 1 node, PostgreSQL with 1, 2 and 3 nodes (each node its own data dir, one
  shared database). With N nodes, N wrk processes run at once, one per node (connections split),
  and their req/s add up: the load balancer is wrk itself. Ratios are to SQLite with 1 node.
- Queue-trigger msg/s at batch 1, 10 and 100 (one consumer, in-process, a fresh instance per batch),
  on SQLite and on PostgreSQL: for the C hello (what the trigger and the store cost) and for the
  Python hello (where a Python interpreter's start per batch dominates).
- Database round trips per HTTP invoke of a function whose alias is cached (in-process Host over
  PostgreSQL; invocation records are written in batches by a background thread and counted apart).
On 2 cores every node, the database and wrk share the same CPUs: more nodes cannot add capacity
here; what the multi-node rows show is the cost of coordination, not scaling.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# the PostgreSQL server is the test suite's
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests"), str(ROOT / "bench")]

import http_load  # noqa: E402
import queue_triggers as bench_queue  # noqa: E402

CACHE, free_port, wait_ready = http_load.CACHE, http_load.free_port, http_load.wait_ready

from postgres_server import PostgresServer  # noqa: E402

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.stores.database import PostgresDatabase  # noqa: E402

KEY = bytes(range(32))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "host"), "FNHOST_MASTER_KEY": base64.b64encode(KEY).decode()}


def guests() -> dict[str, tuple[bytes, dict[str, object]]]:
    out = {}
    for lang in ("c", "python"):
        built = build_guest(ROOT / "guests" / lang / "hello")
        out[lang] = (built.wasm_path.read_bytes(), {**built.manifest.to_dict(), "name": f"hello-{lang}"})
    return out


def deploy_all(host: Host, built: dict[str, tuple[bytes, dict[str, object]]]) -> None:
    for lang, (wasm, manifest) in built.items():
        host.deploy(f"hello-{lang}", wasm, {**manifest, "http": {"public": True}})


def serve(stack: ExitStack, data: Path, database: str | None) -> str:
    port = free_port()
    cmd = [sys.executable, "-m", "fnhost", "serve", "--port", str(port), "--data-dir", str(data),
           "--cache-dir", str(CACHE / "compiled"), *(["--database", database] if database else [])]  # fmt: skip
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(lambda: (proc.terminate(), proc.wait(20)))
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/readyz", proc)
    return url


def wrk_many(urls: list[str], seconds: int, connections: int) -> float:
    """Total req/s of one wrk per URL, run at the same time."""
    per = max(1, connections // len(urls))
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{per}", f"-d{seconds}s", url], stdout=subprocess.PIPE, text=True)
             for url in urls]  # fmt: skip
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
        total += float(line.split()[1])
    return total


def http_rows(args: argparse.Namespace, pg: PostgresServer, built: dict[str, tuple[bytes, dict[str, object]]],
              tmp: Path) -> dict[str, dict[str, float]]:  # fmt: skip
    configs = [("sqlite, 1 node", None, 1)] + [(f"postgresql, {n} node{'s' * (n > 1)}", "pg", n)
                                               for n in range(1, args.nodes + 1)]  # fmt: skip
    rows: dict[str, dict[str, float]] = {}
    for label, backend, nodes in configs:
        run_dir = Path(tempfile.mkdtemp(dir=tmp))
        dsn = pg.new_database() if backend else None
        with Host(run_dir / "operator", cache_dir=CACHE / "compiled", master_key=KEY, database=dsn) as host:
            deploy_all(host, built)
        with ExitStack() as stack:
            # SQLite: the one node serves the operator's data dir; PostgreSQL: each node a data dir of its own.
            urls = [serve(stack, run_dir / ("operator" if dsn is None else f"node{i}"), dsn) for i in range(nodes)]
            rows[label] = {}
            for lang in built:
                paths = [f"{u}/fn/hello-{lang}/hello?name=bench" for u in urls]
                for path in paths:
                    assert httpx.get(path, timeout=30).json() == {"message": "Hello, bench!"}
                rows[label][lang] = wrk_many(paths, args.seconds, args.connections)
    return rows


def queue_rate(batch: int, messages: int, built: tuple[bytes, dict[str, object]], database: str | None) -> float:
    """bench/queue_triggers.py's measurement, on SQLite (None) or on `database`."""
    wasm, manifest = built
    rate, _, _, _ = bench_queue.run(batch, messages, wasm, {**manifest, "name": "hello"}, database=database, master_key=KEY)
    return float(rate)


def round_trips(dsn: str, built: tuple[bytes, dict[str, object]], tmp: Path, calls: int = 200) -> tuple[float, float]:
    wasm, manifest = built
    with Host(tmp / "rt", cache_dir=CACHE / "compiled", master_key=KEY, database=dsn) as host:
        host.deploy("hello-c", wasm, {**manifest, "http": {"public": True}})
        db = host.open_store(lambda db: db)
        assert isinstance(db, PostgresDatabase)
        host.invoke_http("hello-c", "GET", "/hello", [], b"")  # prepared, alias cached
        time.sleep(0.3)  # the warm-up's record written
        before, before_all = db.round_trips_of_this_thread, db.round_trips
        for _ in range(calls):
            host.invoke_http("hello-c", "GET", "/hello", [], b"")
        host.invocations.close()  # flush what the recorder thread still holds
        on_the_request_path = db.round_trips_of_this_thread - before
        in_the_background = db.round_trips - before_all - on_the_request_path
        return on_the_request_path / calls, in_the_background / calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/cluster.py needs wrk (apt-get install wrk)")
    print(f"fnhost bench/cluster.py — wrk, {args.connections} connections, {args.seconds}s each, {os.cpu_count()} cores")
    built = guests()
    pg = PostgresServer()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            rows = http_rows(args, pg, built, tmp)
            base = rows["sqlite, 1 node"]
            for label, by_lang in rows.items():
                for lang, rps in by_lang.items():
                    print(f"http {lang:<6} hello  {label:<20} {rps:8.0f} req/s  ({rps / base[lang]:4.2f}x sqlite 1 node)")
            for lang in ("c", "python"):
                for batch in (1, 10, 100):
                    sqlite = queue_rate(batch, args.messages, built[lang], None)
                    postgres = queue_rate(batch, args.messages, built[lang], pg.new_database())
                    print(f"queue {lang:<6} hello batch {batch:<3}  sqlite {sqlite:7.0f} msg/s  "
                          f"postgresql {postgres:7.0f} msg/s  ({postgres / sqlite:4.2f}x sqlite)")  # fmt: skip
            per_invoke, per_record = round_trips(pg.new_database(), built["c"], tmp)
            print(f"database round trips per cached-alias HTTP invoke: {per_invoke:.2f} "
                  f"(+ {per_record:.2f} for its batched invocation record)")  # fmt: skip
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
