"""Two checkouts of fnhost, side by side: the same in-process invocations, alternating A and B.

    python bench/ab.py A_DIR B_DIR [--rounds 4] [--n 100]

A_DIR and B_DIR are source trees (say, `git worktree add /tmp/base main` and this one). Each round
runs one child process per tree, A then B, so machine noise hits both alike; each child deploys the
Python hello component and the WAT echo into a fresh data dir (shared compile cache) and prints the
p50 of every operation. Printed: the median over rounds of each side's p50, and B/A.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


def child(root: Path, n: int) -> None:
    here = Path(__file__).resolve().parent  # bench/queue.py would shadow the stdlib's queue
    sys.path[:] = [str(root / "host"), str(root / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != here]
    import wat_guests

    from fnhost import Host
    from fnhost.build import build_guest

    hello = build_guest(root / "guests" / "python" / "hello")
    wasm = hello.wasm_path.read_bytes()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(Path(tmp) / "data", cache_dir=CACHE / "compiled")
        host.deploy("hello", wasm, hello.manifest)
        host.deploy("warm", wasm, {**hello.manifest.to_dict(), "name": "warm", "limits": {"instance_reuse": 100000}})
        host.deploy("core", wat_guests.ECHO, {"name": "core", "limits": {"memory_mb": 64}})
        host.deploy("corewarm", wat_guests.ECHO, {"name": "corewarm", "limits": {"memory_mb": 64, "instance_reuse": 100000}})
        wait = getattr(host, "wait_for_tier_up", None)
        if wait is not None:  # measure the Cranelift code, not Winch's with a compile alongside
            wait()
        body = os.urandom(100_000)
        big = os.urandom(1_000_000)
        ops: dict[str, tuple[Callable[[], object], int]] = {
            "fresh python invoke": (lambda: host.invoke("hello", b'{"name": "x"}'), n),
            "warm python invoke": (lambda: host.invoke("warm", b'{"name": "x"}'), n),
            "warm python GET /hello": (lambda: host.invoke_http("warm", "GET", "/hello?name=x", [("a", "b")]), n),
            "fresh core invoke": (lambda: host.invoke("core", b"x"), n),
            "warm core invoke": (lambda: host.invoke("corewarm", b"x"), n),
            "100 KB python echo, fresh": (lambda: host.invoke_http("hello", "POST", "/echo", [], body), max(5, n // 10)),
            "100 KB python echo, warm": (lambda: host.invoke_http("warm", "POST", "/echo", [], body), max(5, n // 10)),
            "1 MB python echo, fresh": (lambda: host.invoke_http("hello", "POST", "/echo", [], big), max(3, n // 20)),
            "1 MB python echo, warm": (lambda: host.invoke_http("warm", "POST", "/echo", [], big), max(3, n // 20)),
        }
        for name, (op, count) in ops.items():
            for _ in range(3):
                op()
            samples = []
            for _ in range(count):
                t = time.perf_counter()
                op()
                samples.append(time.perf_counter() - t)
            results[name] = statistics.median(samples) * 1000
        host.close()
    print(json.dumps(results))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.a, args.n)
        return
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for side, root in (("A", args.a), ("B", args.b)):
            out = subprocess.run(
                [sys.executable, __file__, str(root.resolve()), str(root.resolve()), "--child", "--n", str(args.n)],
                check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
            ).stdout
            runs[side].append(json.loads(out.strip().splitlines()[-1]))
    print(f"bench/ab.py — A={args.a} B={args.b}, {args.rounds} rounds x {args.n} calls, p50 medians")
    for name in runs["A"][0]:
        a = statistics.median(r[name] for r in runs["A"])
        b = statistics.median(r[name] for r in runs["B"])
        print(f"{name:<28} A {a:8.3f} ms | B {b:8.3f} ms | B/A {b / a:5.2f}x")


if __name__ == "__main__":
    main()
