"""What the app does per function URL request, without a server: fnhost's ASGI app next to bare Starlette.

    python bench/function_url.py [--rounds 5] [--n 2000]

The same GET (three headers, a query) is sent to `fnhost.Server`'s app — the warm C hello
(`instance_reuse`) through `/fn/hello-c/hello` — and to bench/bare_app.py's app, as ASGI calls on one
event loop, one at a time, alternated in rounds of `--n` requests. Printed per side: the median over
rounds of the wall time per request and of the event loop thread's CPU time per request (what a
server's single loop pays; fnhost's invocation itself runs on a worker thread and is in the wall
time only). No HTTP parsing is in either: bench/http_load.py measures that under wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "bench")]

import bare_app  # noqa: E402

from fnhost.build import build_guest  # noqa: E402
from fnhost.server import Server, ServerConfig  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def request(app: App, path: str) -> Callable[[], Awaitable[None]]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def once() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"name=bench", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk/4.2"), (b"accept", b"*/*")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {},
        }  # fmt: skip
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        assert status == [200], status

    return once


async def per_request(once: Callable[[], Awaitable[None]], n: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(n):
        await once()
    return (time.perf_counter() - wall) / n, (time.thread_time() - cpu) / n


async def compare(sides: dict[str, Callable[[], Awaitable[None]]], rounds: int, n: int) -> None:
    for once in sides.values():  # warm up: instances, caches, imports
        await per_request(once, 200)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, once in sides.items():
            runs[name].append(await per_request(once, n))
    for name, samples in runs.items():
        wall = statistics.median(s[0] for s in samples) * 1e6
        cpu = statistics.median(s[1] for s in samples) * 1e6
        print(f"{name:<34} {wall:7.0f} us per request  {cpu:7.0f} us loop-thread CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    built = build_guest(ROOT / "guests" / "c" / "hello")
    manifest = {
        **built.manifest.to_dict(),
        "name": "hello-c",
        "http": {"public": True},
        "limits": {"instance_reuse": 1000},
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        Server(ServerConfig(data_dir=Path(tmp) / "data", cache_dir=CACHE / "compiled")) as server,
    ):
        server.host.deploy("hello-c", built.wasm_path.read_bytes(), manifest)
        print(f"one ASGI request at a time, {args.rounds} rounds x {args.n}, medians; the warm C hello")
        sides = {
            "bare starlette (bench/bare_app.py)": request(bare_app.app, "/hello"),  # type: ignore[arg-type]
            "fnhost function URL": request(server.app, "/fn/hello-c/hello"),  # type: ignore[arg-type]
        }
        asyncio.run(compare(sides, args.rounds, args.n))


if __name__ == "__main__":
    main()
