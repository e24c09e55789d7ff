"""HTTP throughput and latency, side by side in one run, on 127.0.0.1 only.

    python bench/http_load.py [--seconds 5] [--connections 8] [--processes 1] [--instance-reuse N]

Starts, one after the other on free loopback ports: a bare Starlette JSON endpoint (bench/bare_app.py)
and `fnhost serve` (the same Hypercorn settings) with two public functions deployed — the C hello
(a tiny core module) and the Python hello (a component). Each target gets the same bounded load
from wrk (Debian's `wrk`, required: a Python client caps what it measures), and the script prints req/s, p50
and p99, the server's CPU per request (its processes' user + system time over the run, from /proc: on
a shared machine it moves less than req/s), and each function's throughput as a fraction of the bare
endpoint's. `--instance-reuse N` deploys both functions with `limits.instance_reuse = N` (warm
instances); by default every request gets a fresh one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


def wait_processes(url: str, processes: int, timeout: float = 60) -> None:
    """With `--processes N`, wait until every server process has answered (X-Fnhost-Process)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while processes > 1 and len(seen) < processes:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}: only {len(seen)} of {processes} processes answered after {timeout}s")
        seen.add(httpx.get(url, timeout=1).headers["x-fnhost-process"])  # a fresh connection each time


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def latency(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses\n{out}")
    return rps, latency("50"), latency("99")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its descendants so far (Linux /proc)."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it exited meanwhile
                continue
            parents[int(entry.name)], stats[int(entry.name)] = int(fields[1]), fields
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [child for child, parent in parents.items() if parent == p and child not in tree]
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(load: Callable[[str, int, int], tuple[float, float, float]], pid: int, url: str, seconds: int,
             connections: int) -> tuple[float, float, float, float]:  # fmt: skip
    """`load`'s (req/s, p50, p99) and the CPU µs per request of process `pid` (and its children) meanwhile."""
    cpu = tree_cpu_s(pid)
    started = time.monotonic()
    rps, p50, p99 = load(url, seconds, connections)
    cpu_s, elapsed = tree_cpu_s(pid) - cpu, time.monotonic() - started
    return rps, p50, p99, cpu_s * 1e6 / max(1.0, rps * elapsed)


@contextlib.contextmanager
def fnhost_serve(data: Path, processes: int, *extra: str) -> Iterator[str]:
    """`fnhost serve` on a free loopback port over `data`, ready (every process answering); yields its URL."""
    with fnhost_server(data, processes, *extra) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def fnhost_server(data: Path, processes: int, *extra: str) -> Iterator[tuple[str, int]]:
    """`fnhost_serve`, yielding (URL, the server's pid) too."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fnhost", "serve", "--port", str(port), "--data-dir", str(data),
         "--cache-dir", str(CACHE / "compiled"), "--processes", str(processes), *extra],
        env={**os.environ, "PYTHONPATH": str(ROOT / "host")}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/healthz", server)
        wait_processes(f"{base_url}/healthz", processes)
        yield base_url, server.pid
    finally:
        server.terminate()
        server.wait(20)


def print_results(results: dict[str, tuple[float, ...]], base: str, label: str) -> None:
    """One line per target: req/s, p50, p99, CPU per request (when measured), and throughput relative to `base`."""
    width = max(map(len, results)) + 2
    for name, (rps, p50, p99, *cpu) in results.items():
        ratio = rps / results[base][0]
        cpu_shown = f"  cpu/req {cpu[0]:6.0f} us" if cpu else ""
        print(
            f"{name:<{width}} {rps:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{cpu_shown}  ({ratio:4.2f}x {label})"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1, help="fnhost serve --processes")
    ap.add_argument("--instance-reuse", type=int, default=0, help="the functions' limits.instance_reuse (0: fresh)")
    args = ap.parse_args()
    if not shutil.which("wrk"):  # a load generator in Python caps what it measures: no figure worth keeping
        raise SystemExit("bench/http_load.py needs wrk (apt-get install wrk)")
    load = wrk
    print(
        f"fnhost bench/http_load.py — load: {load.__name__}, {args.connections} connections, {args.seconds}s each, "
        f"{os.cpu_count()} cores, fnhost serve --processes {args.processes}, "
        + (f"warm instances (instance_reuse={args.instance_reuse})" if args.instance_reuse else "fresh instances")
    )
    results: dict[str, tuple[float, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        with Host(data, cache_dir=CACHE / "compiled") as host:
            for lang in ("c", "python"):
                built = build_guest(ROOT / "guests" / lang / "hello")
                manifest = {**built.manifest.to_dict(), "name": f"hello-{lang}", "http": {"public": True}}
                if args.instance_reuse:
                    manifest["limits"] = {**manifest.get("limits", {}), "instance_reuse": args.instance_reuse}
                host.deploy(f"hello-{lang}", built.wasm_path.read_bytes(), manifest)

        port = free_port()
        bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_app.py"), str(port)])
        try:
            wait_ready(f"http://127.0.0.1:{port}/hello", bare)
            results["bare starlette"] = measured(
                load, bare.pid, f"http://127.0.0.1:{port}/hello?name=bench", args.seconds, args.connections
            )
        finally:
            bare.terminate()
            bare.wait(10)

        with fnhost_server(data, args.processes) as (base_url, pid):
            for lang in ("c", "python"):
                url = f"{base_url}/fn/hello-{lang}/hello?name=bench"
                assert httpx.get(url).json() == {"message": "Hello, bench!"}
                load(url, 1, args.connections)  # warm-up: the first instances, the alias cache
                results[f"fnhost {lang} hello"] = measured(load, pid, url, args.seconds, args.connections)

    print_results(results, "bare starlette", "bare")


if __name__ == "__main__":
    main()
