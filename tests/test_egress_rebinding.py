"""DNS rebinding, tried against the real resolver path: a DNS server of the test's own
(tests/dns_server.py) answers a granted wildcard name with a public address on one query and with
127.0.0.1 on the next — the classic way to make a name pass a check and then connect elsewhere.

The host runs in a child process whose /etc/resolv.conf is bind-mounted (in a mount namespace of
its own, `unshare -m`) to name that server, so glibc's getaddrinfo asks it as it would ask any
resolver. The loopback server must never see a request, and no connection may cause a second
lookup. Public addresses are not reachable from this sandbox (or reach an intercepting proxy), so
a request that was let through ends as a timeout or a foreign response, never as the echo of the
loopback server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COMPILED, build_or_skip, missing_toolchain
from dns_server import AAAA, A, DnsServer
from egress_servers import Server

GUESTS = Path(__file__).resolve().parents[1] / "guests"
DNS = "127.0.0.77"  # a loopback address of its own: nothing else listens on its port 53
PUBLIC = "1.2.3.4"
pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fnhost import Host
    from fnhost.egress import EgressConfig

    data, cache, wasm, manifest, mode, grant, url, times = sys.argv[1:]
    host = Host(Path(data), cache_dir=Path(cache), egress=EgressConfig(mode=mode))
    manifest = json.loads(manifest)
    manifest["grants"] = {"http": [grant]} if grant else {}
    host.deploy(manifest["name"], Path(wasm).read_bytes(), manifest)
    for _ in range(int(times)):
        r = host.invoke(manifest["name"], json.dumps({"url": url, "timeout_ms": 1200}).encode())
        print(json.dumps({"outcome": r.outcome.value, "error": r.error, "output": r.output.decode()}), flush=True)
    host.close()
    """
)


@pytest.fixture(scope="module")
def loopback() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fetch_guest() -> tuple[Path, dict[str, object]]:
    built = build_or_skip(GUESTS / "python" / "fetch")
    return built.wasm_path, {**built.manifest.to_dict(), "name": "fetch"}


def run_host(
    tmp_path: Path,
    guest: tuple[Path, dict[str, object]],
    answer: object,
    url: str,
    *,
    grant: str = "",
    mode: str = "allowlist",
    times: int = 6,
) -> tuple[list[dict[str, str]], DnsServer]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        missing_toolchain("root and unshare(1) (the test points glibc's resolver at its own DNS server)")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {DNS}\noptions attempts:1 timeout:1\n")
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    dns = DnsServer(DNS, answer)  # type: ignore[arg-type]
    try:
        wasm, manifest = guest
        args = [sys.executable, str(child), str(tmp_path / "data"), str(COMPILED), str(wasm)]
        args += [json.dumps(manifest), mode, grant, url, str(times)]
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, str(resolv), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        dns.close()
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == times, done.stdout + done.stderr[-2000:]
    return results, dns


def assert_never_reached_loopback(results: list[dict[str, str]], loopback: Server) -> list[str]:
    """Each invocation ended as `denied` naming 127.0.0.1, or reached no local server. Returns the
    error codes (None for a response from elsewhere)."""
    assert loopback.seen == [], loopback.seen
    codes = []
    for r in results:
        assert r["outcome"] == "ok", r
        out = json.loads(r["output"])
        if out.get("error") == "denied":
            assert "127.0.0.1" in out["message"] and "loopback" in out["message"], out
        elif "error" not in out:
            assert ["x-echo", "1"] not in out["headers"], out  # a foreign answer, not the local server's
        codes.append(out.get("error"))
    return codes


def alternating(name: str, qtype: int, n: int) -> list[str]:
    if qtype == AAAA:
        return []
    return [PUBLIC] if n % 2 == 0 else ["127.0.0.1"]


def test_a_name_that_rebinds_to_loopback_never_connects_there(
    tmp_path: Path, fetch_guest: tuple[Path, dict[str, object]], loopback: Server
) -> None:
    url = f"http://a.rebind.test:{loopback.port}/echo"
    results, dns = run_host(tmp_path, fetch_guest, alternating, url, grant=f"http://*.rebind.test:{loopback.port}")
    codes = assert_never_reached_loopback(results, loopback)
    assert "denied" in codes, codes  # the loopback answers came, and were refused
    assert any(c != "denied" for c in codes), codes  # the public answers were let through (and went nowhere)
    # one lookup per connection attempt, never a second one for the same connection
    assert dns.count(A) <= len(results), dns.queries


def test_an_answer_mixing_public_and_loopback_addresses_never_connects_to_loopback(
    tmp_path: Path, fetch_guest: tuple[Path, dict[str, object]], loopback: Server
) -> None:
    def mixed(name: str, qtype: int, n: int) -> list[str]:
        return [] if qtype == AAAA else ["127.0.0.1", PUBLIC]

    url = f"http://a.rebind.test:{loopback.port}/echo"
    results, _ = run_host(tmp_path, fetch_guest, mixed, url, grant=f"http://*.rebind.test:{loopback.port}", times=2)
    assert_never_reached_loopback(results, loopback)


def test_an_ipv4_mapped_loopback_answer_is_refused(
    tmp_path: Path, fetch_guest: tuple[Path, dict[str, object]], loopback: Server
) -> None:
    def mapped(name: str, qtype: int, n: int) -> list[str]:
        return ["::ffff:127.0.0.1"] if qtype == AAAA else []

    url = f"http://a.rebind.test:{loopback.port}/echo"
    results, _ = run_host(tmp_path, fetch_guest, mapped, url, grant=f"http://*.rebind.test:{loopback.port}", times=2)
    codes = assert_never_reached_loopback(results, loopback)
    assert codes == ["denied", "denied"], results


def test_public_mode_refuses_a_name_that_rebinds_to_loopback(
    tmp_path: Path, fetch_guest: tuple[Path, dict[str, object]], loopback: Server
) -> None:
    url = f"http://b.rebind.test:{loopback.port}/echo"
    results, dns = run_host(tmp_path, fetch_guest, alternating, url, mode="public")
    codes = assert_never_reached_loopback(results, loopback)
    assert "denied" in codes and any(c != "denied" for c in codes), codes
    assert dns.count(A) <= len(results), dns.queries
