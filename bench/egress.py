"""An outbound request's overhead over a direct httpx call from the host, in one run.

    python bench/egress.py [--requests N]

A local HTTP/1.1 server on 127.0.0.1 (keep-alive) answers `GET /bytes?n=N`. Per response size
(100 bytes and 100 KB), the time per request of:
- `httpx`: a pooled `httpx.Client` in the host process — the floor;
- `egress`: `fnhost.egress.Egress.request`, what the capability calls (origin parse, grant check,
  resolve-check-connect on new connections, deadline-cut reads, the body cap, the exchange record);
- `guest`: the Python fetch guest (guests/python/fetch, a component, warm instance) making N
  requests in one invocation through `fnhost_sdk.http` — the whole path a function sees, from
  the guest's call to its Response object.
Rows run in interleaved rounds (the median per row is shown); ratios are against `httpx`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host")]

import httpx  # noqa: E402

from fnhost import EgressConfig, Host  # noqa: E402
from fnhost.build import build_guest  # noqa: E402
from fnhost.egress import Egress, Hop, parse_grant  # noqa: E402

CACHE = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 20  # one write per response (flushed after each request): no delayed-ACK stalls

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        n = int(parse_qs(urlsplit(self.path).query)["n"][0])
        self.send_response(200)
        self.send_header("content-length", str(n))
        self.end_headers()
        self.wfile.write(b"x" * n)


def per_request_us(run: object, requests: int) -> float:
    assert callable(run)
    t0 = time.perf_counter()
    run(requests)
    return (time.perf_counter() - t0) * 1e6 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per row, over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    grant = parse_grant(origin)
    built = build_guest(ROOT / "guests" / "python" / "fetch")
    client = httpx.Client()
    egress = Egress()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Host(
            Path(tmp) / "data", cache_dir=CACHE / "compiled", egress=EgressConfig(max_requests_per_invocation=10_000)
        ) as host,
    ):
        limits = dataclasses.replace(built.manifest.limits, instance_reuse=100_000, timeout_ms=60_000)
        manifest = dataclasses.replace(built.manifest, limits=limits)
        host.deploy("fetch", built.wasm_path.read_bytes(), {**manifest.to_dict(), "grants": {"http": [origin]}})
        print(
            f"fnhost bench/egress.py — {os.cpu_count()} cores, {args.requests} sequential requests per row, "
            f"median of {args.rounds} interleaved rounds"
        )
        for size in (100, 100_000):
            url = f"{origin}/bytes?n={size}"

            def direct(n: int = 1, url: str = url, size: int = size) -> None:
                for _ in range(n):
                    assert len(client.get(url).content) == size

            def library(n: int = 1, url: str = url, size: int = size) -> None:
                for _ in range(n):
                    log: list[object] = []
                    reply = egress.request(
                        "GET",
                        url,
                        [],
                        b"",
                        timeout_ms=None,
                        deadline=time.monotonic() + 30,
                        authorize=lambda target, via: Hop(grant.text, grant.literal),
                        log=log,  # type: ignore[arg-type]
                    )
                    assert len(reply.body) == size

            def guest(n: int = 1, url: str = url, size: int = size) -> None:
                r = host.invoke("fetch", json.dumps({"url": url, "times": n}).encode())
                out = json.loads(r.output)
                assert out.get("count") == n and len(out["body"]) == size, (r.error, out.get("message"))

            # interleaved rounds, the median of each row: a busy machine slows all rows alike
            runs = {"httpx": direct, "egress": library, "guest": guest}
            for run in runs.values():
                run()  # warm: connection open, code paths hot
            per = max(1, args.requests // args.rounds)
            samples: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, run in runs.items():
                    samples[name].append(per_request_us(run, per))
            rows = [(name, statistics.median(values)) for name, values in samples.items()]
            base = rows[0][1]
            cells = "   ".join(f"{name} {us:8.0f} µs ({us / base:4.2f}x)" for name, us in rows)
            print(f"{size:>7} B  {cells}")
            assert all(math.isfinite(us) for _, us in rows)
    egress.close()
    client.close()
    server.shutdown()


if __name__ == "__main__":
    main()
