"""Deploy to first invoke, and CPU-bound speed before and after the background tier-up.

    python bench/deploy.py [--spin 300000] [--rounds 5]

Starts `fnhost serve` on a free loopback port with an empty data dir and an EMPTY compile cache,
uploads the 18 MB Python chaos component (built beforehand, not timed) and invokes it until the
first success: printed as `deploy to first invoke: N.N s` — Winch compiles it at deploy, Cranelift
recompiles it in the background. Then a CPU-bound invoke (`spin:N`, a Python loop in the guest) is
timed on the Winch code (while the Cranelift compile runs alongside), after the tier-up, and on a
second function deployed from the same wasm once its Cranelift artifact is cached (what a
Cranelift-only host runs), interleaved. The last line is the after-tier-up / Cranelift ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "bench")]

from http_load import free_port, wait_ready  # noqa: E402

from fnhost.build import build_guest  # noqa: E402
from fnhost.control import pack_bundle  # noqa: E402
from fnhost.runtime.engine import CRANELIFT, EngineSettings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spin", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    guest = ROOT / "guests" / "python" / "chaos"
    built = build_guest(guest)
    wasm = built.wasm_path.read_bytes()
    bundle = pack_bundle((guest / "fnhost.toml").read_text(), wasm)
    print(f"fnhost bench/deploy.py — {len(wasm) / 1e6:.1f} MB Python component, empty compile cache, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "compiled"
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "fnhost", "serve", "--port", str(port), "--data-dir", str(data), "--cache-dir", str(cache)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "host")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base}/healthz", server)
            client = httpx.Client(base_url=base, timeout=120,
                                  headers={"Authorization": f"Bearer {(data / 'admin.key').read_text().strip()}"})  # fmt: skip

            def invoke(name: str, payload: str) -> float:
                t = time.perf_counter()
                r = client.post(f"/v1/functions/{name}/invoke", content=payload)
                assert r.status_code == 200, r.text
                return time.perf_counter() - t

            t0 = time.perf_counter()
            r = client.put("/v1/functions/chaos", content=bundle)
            assert r.status_code in (200, 201), r.text
            uploaded = time.perf_counter()
            while client.post("/v1/functions/chaos/invoke", content="ok").status_code != 200:
                time.sleep(0.05)
            done = time.perf_counter()
            print(f"deploy to first invoke: {done - t0:.1f} s  (upload + deploy {uploaded - t0:.1f} s, first invoke {done - uploaded:.2f} s)")

            spin = f"spin:{args.spin}"
            winch = [invoke("chaos", spin) for _ in range(args.rounds)]
            digest = cache / EngineSettings().cache_key(CRANELIFT) / f"{hashlib.sha256(wasm).hexdigest()}.cwasm.sha256"
            while not digest.exists():
                time.sleep(0.1)
            print(f"tier-up done: {time.perf_counter() - t0:.1f} s after the upload")
            time.sleep(1)  # the swap follows the artifact's write
            r = client.put("/v1/functions/chaos-ref", content=pack_bundle(
                (guest / "fnhost.toml").read_text().replace('name = "chaos"', 'name = "chaos-ref"'), wasm))  # fmt: skip
            assert r.status_code in (200, 201), r.text
            after, ref = [], []
            for _ in range(args.rounds):
                after.append(invoke("chaos", spin))
                ref.append(invoke("chaos-ref", spin))
            w, a, c = (statistics.median(x) * 1000 for x in (winch, after, ref))
            print(f"{spin} on Winch code (tier-up compiling alongside)  p50 {w:8.1f} ms  ({w / c:4.2f}x Cranelift)")
            print(f"{spin} after tier-up                               p50 {a:8.1f} ms")
            print(f"{spin} Cranelift-only deploy                       p50 {c:8.1f} ms")
            print(f"CPU-bound after tier-up: {a / c:4.2f}x Cranelift")
        finally:
            server.terminate()
            server.wait(20)


if __name__ == "__main__":
    main()
