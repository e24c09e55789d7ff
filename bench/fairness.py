"""One function must not starve the others: good traffic's latency, alone and under attack, on 127.0.0.1 only.

    python bench/fairness.py [--seconds 5] [--connections 4] [--hostile 6]

Starts `fnhost serve` over a fresh data dir with four functions: `good` (the C hello, a tiny core
module, public) and three hostile ones — `hog-loop` (spins until its 1 s deadline), `hog-sleep`
(guests/python/pinned: a WASI preview-2 sleep of 4 s that its 1 s deadline cannot interrupt) and
`hog-alloc` (touches 200 MiB, then again). First the good traffic runs alone (wrk, bounded);
then again while `--hostile` connections (spread over the three hogs) invoke them back to back
until the good run ends; `--rounds` times, alternated. `fnhost serve` isolates demoted functions
by default (`--isolate`); `--serve-options "... --no-isolate"` measures them in the same process. Prints every run, then the ratio of the median p99s:
`good p99 under attack / solo p99: R.RRx` (goal ≤ 2x).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "bench")]

from http_load import CACHE, fnhost_server, wrk  # noqa: E402

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402

SERVE_OPTIONS = ("--workers", "8", "--function-share", "0.25")
HOGS = {
    "hog-loop": ("rust/chaos", {"timeout_ms": 1000, "fuel": 10**15}, b"loop"),
    "hog-sleep": ("python/pinned", {"timeout_ms": 1000}, b"sleep:4"),
    "hog-alloc": ("rust/chaos", {"timeout_ms": 1000, "memory_mb": 256}, b"alloc:200"),
}


def deploy(data: Path) -> None:
    with Host(data, cache_dir=CACHE / "compiled") as host:
        built = build_guest(ROOT / "guests" / "c" / "hello")
        host.deploy("good", built.wasm_path.read_bytes(), {**built.manifest.to_dict(), "name": "good"})
        for name, (src, limits, _) in HOGS.items():
            built = build_guest(ROOT / "guests" / src)
            manifest = built.manifest.to_dict()
            manifest.update(name=name, limits={**manifest["limits"], **limits})
            host.deploy(name, built.wasm_path.read_bytes(), manifest)


def hostile(
    base_url: str, token: str, connections: int, stop: threading.Event, names: list[str]
) -> collections.Counter[str]:
    """`connections` clients invoking the hogs back to back until `stop`; their outcomes counted."""
    outcomes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        name = names[i % len(names)]
        payload = HOGS[name][2]
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            while not stop.is_set():
                r = c.post(f"/v1/functions/{name}/invoke", content=payload)
                with lock:
                    outcomes[f"{name} {r.headers.get('x-fnhost-outcome', r.status_code)}"] += 1
                if r.status_code == 429:
                    time.sleep(0.05)  # as a client told Retry-After would, only sooner

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(60)
    return outcomes


def isolation_rss_mib(server_pid: int) -> float | None:
    """Resident memory of the server's isolation process (fnhost.isolation), if it has one."""
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or b"fnhost.isolation" not in (entry / "cmdline").read_bytes():
                continue
            status = (entry / "status").read_text()
        except OSError:  # it exited meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["PPid"]) == server_pid:
            return int(fields["VmRSS"].split()[0]) / 1024
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="solo and attack runs, alternated")
    ap.add_argument("--connections", type=int, default=4, help="good traffic's connections")
    ap.add_argument("--hostile", type=int, default=6, help="hostile connections")
    ap.add_argument("--hogs", default=",".join(HOGS), help="the hostile functions, comma-separated")
    ap.add_argument("--serve-options", default=" ".join(SERVE_OPTIONS), help="fnhost serve's options")
    args = ap.parse_args()
    options = args.serve_options.split()
    hogs = args.hogs.split(",")
    if not shutil.which("wrk"):  # a load generator in Python caps the good traffic itself (2026-12-04)
        raise SystemExit("bench/fairness.py needs wrk (apt-get install wrk)")
    load = wrk
    print(
        f"fnhost bench/fairness.py — load: {load.__name__}, good: {args.connections} connections, "
        f"{args.seconds}s; hostile: {args.hostile} connections over {', '.join(hogs)}; {os.cpu_count()} cores; "
        f"fnhost serve {' '.join(options)}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        deploy(data)
        with fnhost_server(data, 1, *options) as (base_url, server_pid):
            token = (data / "admin.key").read_text().strip()
            url = f"{base_url}/fn/good/hello?name=bench"
            assert httpx.get(url).status_code == 200
            solo: list[tuple[float, float, float]] = []
            under: list[tuple[float, float, float]] = []
            outcomes: collections.Counter[str] = collections.Counter()
            for _ in range(args.rounds):  # alternated, so load from outside this bench hits both alike
                solo.append(load(url, args.seconds, args.connections))
                stop = threading.Event()
                attack = threading.Thread(
                    target=lambda stop=stop: outcomes.update(hostile(base_url, token, args.hostile, stop, hogs))
                )
                attack.start()
                time.sleep(1.5)  # the hogs are all running (and the sleeper pinned) before measuring
                try:
                    under.append(load(url, args.seconds, args.connections))
                finally:
                    stop.set()
                    attack.join(90)
                time.sleep(4)  # the pinned sleeps return before the next solo round
            metrics = httpx.get(f"{base_url}/metrics").text
            isolation_rss = isolation_rss_mib(server_pid)
    pinned = [line for line in metrics.splitlines() if line.startswith("fnhost_pinned_threads ")]
    isolated = [line for line in metrics.splitlines() if line.startswith("fnhost_isolated_invocations_total ")]
    medians = {}
    for label, runs in (("solo", solo), ("under attack", under)):
        for rps, p50, p99 in runs:
            print(f"good {label:<13} {rps:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        medians[label] = statistics.median(p99 for _, _, p99 in runs)
    print("hostile outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))
    print(f"after the attack: {pinned[0] if pinned else 'fnhost_pinned_threads missing'}")
    print(f"run in the isolation process: {isolated[0] if isolated else 'none (--no-isolate)'}")
    if isolation_rss is not None:
        print(f"isolation process resident after the attack: {isolation_rss:.0f} MiB")
    print(f"median p99 of {args.rounds} rounds: solo {medians['solo']:.2f} ms, under attack {medians['under attack']:.2f} ms")
    print(f"good p99 under attack / solo p99: {medians['under attack'] / medians['solo']:.2f}x")


if __name__ == "__main__":
    main()
