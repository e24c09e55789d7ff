"""Outbound HTTP (`[grants] http`, `fnhost_sdk.http`) through a real Python guest against real local
servers: the contract, every SSRF rule, caps, slow servers, floods, redirects and TLS.

The guest is guests/python/fetch (its event names the request). Servers listen on 127.0.0.1 and are
granted literally (a grant must name a private host literally for it to be reachable).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import COMPILED, build_or_skip
from egress_servers import Server, tls_files

from fnhost import EgressConfig, Forbidden, Host, ManifestError, Outcome
from fnhost.control import ApiKeys
from fnhost.manifest import Manifest

GUEST = Path(__file__).resolve().parents[1] / "guests" / "python" / "fetch"
pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Env:
    host: Host
    server: Server
    other: Server  # a second granted origin
    ungranted: Server
    wasm: bytes
    manifest: Manifest

    def deploy(self, name: str, grants: list[str], host: Host | None = None, **limits: int) -> None:
        lim = dataclasses.replace(self.manifest.limits, instance_reuse=1000, **limits)
        m = dataclasses.replace(self.manifest, name=name.split("/")[-1], limits=lim)
        (host or self.host).deploy(name, self.wasm, {**m.to_dict(), "grants": {"http": grants} if grants else {}})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    built = build_or_skip(GUEST)
    servers = [Server() for _ in range(3)]
    host = Host(tmp_path_factory.mktemp("egress") / "data", cache_dir=COMPILED)
    e = Env(host, *servers, built.wasm_path.read_bytes(), built.manifest)
    e.deploy("fetch", [e.server.origin, e.other.origin, "http://169.254.169.254", "https://*.example.org"])
    e.deploy("nogrants", [])
    yield e
    host.close()
    for s in servers:
        s.close()


def fetch(host: Host, function: str, url: str, **args: Any) -> dict[str, Any]:
    r = host.invoke(function, json.dumps({"url": url, **args}).encode())
    assert r.outcome is Outcome.OK, r.error
    out: dict[str, Any] = json.loads(r.output)
    out["_record"] = host.invocations.get(r.invocation_id)
    out["_result"] = r
    return out


def error_of(out: dict[str, Any], case: str, *words: str) -> str:
    assert out.get("error") == case, out
    for word in words:
        assert word in out["message"], out["message"]
    return str(out["message"])


# --- the contract ------------------------------------------------------------------------------------
def test_a_granted_request_round_trips_and_is_recorded(env: Env) -> None:
    out = fetch(
        env.host, "fetch", f"{env.server.origin}/echo?q=1", method="POST", headers={"x-token": "t"}, body="hello"
    )
    assert out["status"] == 200
    echoed = json.loads(out["body"])
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/echo?q=1", "hello")
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert sent["x-token"] == "t" and sent["user-agent"] == "fnhost" and "accept-encoding" not in sent
    assert sent["host"] == f"127.0.0.1:{env.server.port}"
    assert ["x-echo", "1"] in out["headers"]
    [exchange] = json.loads(out["_record"].outbound)
    assert exchange["method"] == "POST" and exchange["origin"] == env.server.origin and exchange["status"] == 200
    assert exchange["grant"] == env.server.origin and exchange["bytes_received"] == len(out["body"])
    assert exchange["bytes_sent"] >= 5 and exchange["ms"] > 0
    assert out["_result"].outbound[0].status == 200
    from fnhost.api.serialize import jsonable  # what GET /v1/invocations/{id} answers

    assert jsonable(out["_record"])["outbound"] == [exchange]


def test_an_http_error_status_is_a_response_not_an_error(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/status?code=503")
    assert (out["status"], out["body"]) == (503, "status")


def test_outbound_requests_are_counted_in_metrics_per_destination(env: Env) -> None:
    from fnhost.api.metrics import Metrics

    metrics = Metrics()
    out = fetch(env.host, "fetch", f"{env.server.origin}/status?code=404")
    metrics.observe(out["_result"])
    text = metrics.exposition().decode()
    assert f'fnhost_outbound_requests_total{{function="fetch",origin="{env.server.origin}",result="4xx"}} 1.0' in text
    assert f'fnhost_outbound_response_bytes_total{{function="fetch",origin="{env.server.origin}"}} 6.0' in text


def test_python_urllib_fails_with_an_error_naming_the_sdk(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/echo", op="urllib")
    assert "fnhost_sdk.http" in out["message"] and "idna" not in out["message"], out


# --- grants --------------------------------------------------------------------------------------------
def test_an_origin_that_is_not_granted_is_denied_and_never_contacted(env: Env) -> None:
    before = len(env.ungranted.seen)
    out = fetch(env.host, "fetch", f"{env.ungranted.origin}/echo")
    error_of(out, "denied", f"'{env.ungranted.origin}'", "[grants] http", "fnhost.toml")
    [attempt] = json.loads(out["_record"].outbound)  # recorded, though nothing was sent
    assert (attempt["origin"], attempt["status"], attempt["error"]) == (env.ungranted.origin, None, "denied")
    assert out["_result"].outcome is Outcome.OK  # the guest handled the denial
    out = fetch(env.host, "nogrants", f"{env.server.origin}/echo")
    error_of(out, "denied", f"'{env.server.origin}'")
    assert len(env.ungranted.seen) == before


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/",  # `*.example.org` is its subdomains only
        "https://badexample.org/",
        "https://api.example.org.evil.test/",
        "https://api.example.org:8443/",  # another port is another origin
        "http://api.example.org/",  # and another scheme
        "https://api.\u0435xample.org/",  # a Cyrillic ie for the e: another name (xn--)
    ],
)
def test_look_alike_origins_are_not_granted(env: Env, url: str) -> None:
    error_of(fetch(env.host, "fetch", url), "denied", "is not granted")


def test_a_wildcard_grant_matches_subdomains(env: Env) -> None:
    # granted, so the host resolves it: this machine has no DNS for it, which is `unavailable`, not `denied`
    out = fetch(env.host, "fetch", "https://a.b.example.org./x", timeout_ms=3000)
    assert out["error"] in ("unavailable", "timeout"), out
    assert json.loads(out["_record"].outbound)[0]["grant"] == "https://*.example.org"


def test_a_function_of_another_namespace_uses_its_origin_grants(env: Env) -> None:
    env.deploy("team-a/fetch", [env.server.origin])
    assert fetch(env.host, "team-a/fetch", f"{env.server.origin}/echo")["status"] == 200


@pytest.mark.parametrize(
    ("grant", "words"),
    [
        ("https://api.example.com/v1", ["path"]),
        ("https://user:pw@api.example.com", ["userinfo"]),
        ("ftp://files.example.com", ["http or https"]),
        ("https://*.com", ["top-level domain"]),
        ("http://2130706433", ["non-standard spelling", "127.0.0.1"]),
        ("http://0x7f.1", ["127.0.0.1"]),
        ("https://api.example.com:99999", ["1..65535"]),
        ("api.example.com", ["scheme"]),
    ],
)
def test_a_grant_that_is_not_an_origin_is_refused_at_deploy(grant: str, words: list[str]) -> None:
    with pytest.raises(ManifestError) as e:
        Manifest.from_dict({"name": "f", "grants": {"http": [grant]}})
    for word in ["grants.http", *words]:
        assert word in str(e.value)


def test_grants_are_written_canonically() -> None:
    m = Manifest.from_dict(
        {"name": "f", "grants": {"http": ["HTTPS://API.Example.com:443", "https://api.example.com"]}}
    )
    assert m.grants.get("http") == ("https://api.example.com",)
    assert "http" not in Manifest.from_dict({"name": "f"}).to_dict()["grants"]  # older manifests' JSON unchanged


def test_a_limited_key_grants_only_the_origins_its_patterns_allow(tmp_path: Path) -> None:
    from wat_guests import ECHO

    with Host(tmp_path / "data", cache_dir=COMPILED) as host:
        keys = host.open_store(ApiKeys)
        _, token = keys.create("ci", ["deploy"], may_grant=["http:https://*.example.org"])
        ci = keys.authenticate(f"Bearer {token}")
        host.deploy("ok", ECHO, {"name": "ok", "grants": {"http": ["https://api.example.org"]}}, principal=ci)
        with pytest.raises(Forbidden) as e:
            host.deploy("bad", ECHO, {"name": "bad", "grants": {"http": ["https://api.example.com"]}}, principal=ci)
        assert "'http:https://api.example.com'" in str(e.value) and "grants.http" in str(e.value)
        assert [f.name for f in host.list_functions()] == ["ok"]
        with pytest.raises(ValueError, match="KIND:NAME"):
            keys.create("bad", ["deploy"], may_grant=["http:/etc/passwd"])


# --- SSRF: the check is on the resolved address ---------------------------------------------------------
@pytest.fixture(scope="module")
def public(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A host in `--egress public` mode, small body caps; `open` has no grants (any public origin)."""
    config = EgressConfig(mode="public", max_request_bytes=1000, max_response_bytes=4096)
    host = Host(tmp_path_factory.mktemp("public") / "data", cache_dir=COMPILED, egress=config)
    env.deploy("open", [], host=host)
    yield host
    host.close()


@pytest.mark.parametrize(
    ("url", "case", "words"),
    [
        ("http://localhost:{port}/echo", "denied", ["127.0.0.1", "loopback", "names the host literally"]),
        ("http://127.0.0.1:{port}/echo", "denied", ["loopback"]),
        ("http://[::1]:{port}/echo", "denied", ["loopback"]),
        ("http://[::ffff:127.0.0.1]:{port}/echo", "denied", ["loopback"]),
        ("http://[::ffff:169.254.169.254]/", "denied", ["metadata"]),
        ("http://169.254.169.254/latest/meta-data/", "denied", ["metadata"]),
        ("http://[fd00:ec2::254]/", "denied", ["metadata"]),
        ("http://0.0.0.0:{port}/echo", "denied", ["unspecified"]),
        ("http://10.1.2.3/", "denied", ["private"]),
        ("http://192.168.0.1/", "denied", ["private"]),
        ("http://169.254.1.1/", "denied", ["link-local"]),
        ("http://100.64.0.1/", "denied", ["carrier-grade NAT"]),
        ("http://224.0.0.1/", "denied", ["multicast"]),
        ("http://2130706433:{port}/echo", "invalid", ["non-standard spelling", "127.0.0.1"]),
        ("http://0x7f.1:{port}/echo", "invalid", ["127.0.0.1"]),
        ("http://0177.0.0.1:{port}/echo", "invalid", ["127.0.0.1"]),
        ("http://127.1:{port}/echo", "invalid", ["127.0.0.1"]),
        ("http://user:pw@127.0.0.1:{port}/echo", "denied", ["userinfo"]),
        ("file:///etc/passwd", "invalid", ["http or https"]),
    ],
)
def test_ssrf_addresses_are_refused_before_any_connection(
    env: Env, public: Host, url: str, case: str, words: list[str]
) -> None:
    before = len(env.server.seen)
    out = fetch(public, "open", url.format(port=env.server.port), timeout_ms=2000)
    error_of(out, case, *words)
    assert len(env.server.seen) == before


def test_userinfo_is_refused_even_for_a_granted_origin(env: Env) -> None:
    error_of(fetch(env.host, "fetch", f"http://u:p@127.0.0.1:{env.server.port}/echo"), "denied", "userinfo")


def test_a_metadata_address_is_refused_even_when_granted_literally(env: Env) -> None:
    error_of(fetch(env.host, "fetch", "http://169.254.169.254/latest/meta-data/"), "denied", "metadata")


def test_egress_off_refuses_every_request(env: Env, tmp_path: Path) -> None:
    with Host(tmp_path / "data", cache_dir=COMPILED, egress=EgressConfig(mode="off")) as host:
        env.deploy("fetch", [env.server.origin], host=host)
        error_of(fetch(host, "fetch", f"{env.server.origin}/echo"), "denied", "--egress off")


# --- redirects ------------------------------------------------------------------------------------------
def test_redirects_are_followed_within_the_grants(env: Env) -> None:
    to = f"{env.other.origin}/echo"
    out = fetch(
        env.host,
        "fetch",
        f"{env.server.origin}/redirect?to={to}&status=303",
        method="POST",
        body="data",
        headers={"authorization": "Bearer secret", "x-keep": "1"},
    )
    assert out["status"] == 200
    echoed = json.loads(out["body"])
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert echoed["method"] == "GET" and echoed["body"] == ""  # 303: GET, no body
    assert "authorization" not in sent and sent["x-keep"] == "1"  # credentials stay with their origin
    hops = json.loads(out["_record"].outbound)
    assert [(h["origin"], h["status"]) for h in hops] == [(env.server.origin, 303), (env.other.origin, 200)]


def test_a_redirect_to_an_ungranted_or_private_origin_is_denied(env: Env) -> None:
    before = len(env.ungranted.seen)
    out = fetch(env.host, "fetch", f"{env.server.origin}/redirect?to={env.ungranted.origin}/echo")
    error_of(out, "denied", f"'{env.ungranted.origin}'", f"a redirect from {env.server.origin}")
    assert len(env.ungranted.seen) == before
    out = fetch(env.host, "fetch", f"{env.server.origin}/redirect?to=http://169.254.169.254/latest/")
    error_of(out, "denied", "metadata")


def test_a_redirect_loop_stops_after_5_hops(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/loop")
    error_of(out, "unavailable", "more than 5 redirects")
    assert len(json.loads(out["_record"].outbound)) == 6


# --- caps, slow servers, floods -------------------------------------------------------------------------
def test_an_oversized_response_is_too_large_and_cut_while_reading(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/bytes?n={11 << 20}")
    error_of(out, "too-large", "10485760 bytes", "max_response_bytes")
    [exchange] = json.loads(out["_record"].outbound)
    assert exchange["error"] == "too-large" and exchange["bytes_received"] <= (10 << 20) + 65536
    assert len(fetch(env.host, "fetch", f"{env.server.origin}/bytes?n=100000")["body"]) == 100000


def test_body_caps_are_configurable(env: Env, public: Host) -> None:
    # `open` on the public host may reach no private address: a granted literal origin is needed
    env.deploy("capped", [env.server.origin], host=public)
    error_of(fetch(public, "capped", f"{env.server.origin}/bytes?n=5000"), "too-large", "4096 bytes")
    error_of(fetch(public, "capped", f"{env.server.origin}/echo", method="POST", body="x" * 1001), "too-large", "1000")
    assert fetch(public, "capped", f"{env.server.origin}/bytes?n=4096")["status"] == 200


def test_a_trickling_server_is_cut_at_the_request_timeout(env: Env) -> None:
    t0 = time.monotonic()
    out = fetch(env.host, "fetch", f"{env.server.origin}/trickle", timeout_ms=600)
    error_of(out, "timeout", "600 ms", "timeout_ms")
    assert time.monotonic() - t0 < 5  # generous: the server would go on for 60 s


def test_a_request_never_outlives_the_invocation(env: Env) -> None:
    env.deploy("short", [env.server.origin], timeout_ms=1500)
    t0 = time.monotonic()
    r = env.host.invoke("short", json.dumps({"url": f"{env.server.origin}/trickle"}).encode())
    elapsed = time.monotonic() - t0
    assert elapsed < 6  # the host default is 30 s per request, the trickle 60 s
    assert r.outcome is Outcome.OK, r.error  # the host left the guest time to answer
    error_of(json.loads(r.output), "timeout", "remaining time")


def test_a_flood_of_requests_stops_at_the_per_invocation_cap(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/bytes?n=1", times=80)
    error_of(out, "limit-exceeded", "50 outbound requests")
    assert out["count"] == 50


def test_each_request_counts_against_the_host_call_budget(env: Env) -> None:
    env.deploy("budget", [env.server.origin], max_host_calls=3)
    out = fetch(env.host, "budget", f"{env.server.origin}/bytes?n=1", times=10)
    error_of(out, "limit-exceeded", "max_host_calls")
    assert out["count"] == 3


def test_headers_the_host_owns_are_refused(env: Env) -> None:
    out = fetch(env.host, "fetch", f"{env.server.origin}/echo", headers={"host": "internal.example"})
    error_of(out, "invalid", "'host'", "drop it")
    before = len(env.server.seen)
    out = fetch(env.host, "fetch", f"{env.server.origin}/echo", headers={"Fnhost-Chain-Depth": "0"})
    error_of(out, "invalid", "'Fnhost-Chain-Depth'", "chain depth", "docs/events.md", "drop it")
    assert len(env.server.seen) == before  # never sent


def test_every_request_carries_the_chain_depth_of_what_the_function_sends(env: Env) -> None:
    """fnhost.chains: an invocation at depth N sends `fnhost-chain-depth: N + 1`, on every redirect hop too."""
    payload = json.dumps({"url": f"{env.server.origin}/redirect?to={env.server.origin}/echo"}).encode()
    for depth in (0, 5):
        result = env.host.invoke("fetch", payload, chain_depth=depth)
        assert result.ok, result.error
        echoed = json.loads(json.loads(result.output)["body"])
        assert {k.lower(): v for k, v in echoed["headers"].items()}["fnhost-chain-depth"] == str(depth + 1)
        assert env.host.invocations.get(result.invocation_id).chain_depth == depth


# --- TLS --------------------------------------------------------------------------------------------------
def test_tls_is_verified_a_self_signed_server_is_refused(env: Env, tmp_path: Path) -> None:
    context, _ = tls_files(tmp_path, sign_with_ca=False)
    server = Server(tls=context)
    try:
        env.deploy("tls", [server.origin])
        out = fetch(env.host, "tls", f"{server.origin}/echo")
        error_of(out, "unavailable", "TLS certificate verification failed", "ca_file")
    finally:
        server.close()


def test_tls_with_an_operator_ca_succeeds(env: Env, tmp_path: Path) -> None:
    context, ca_file = tls_files(tmp_path, sign_with_ca=True)
    server = Server(tls=context)
    try:
        with Host(tmp_path / "data", cache_dir=COMPILED, egress=EgressConfig(ca_file=str(ca_file))) as host:
            env.deploy("tls", [server.origin], host=host)
            out = fetch(host, "tls", f"{server.origin}/echo")
            assert out["status"] == 200, out
    finally:
        server.close()


def test_fnhost_serve_egress_options_reach_the_server_config(tmp_path: Path) -> None:
    from fnhost.cli.serve import serve, server_config

    ctx = serve.make_context("serve", ["--egress", "off", "--egress-ca-file", str(tmp_path / "ca.pem")])
    config = server_config(ctx.params)
    assert config.egress.mode == "off" and config.egress.ca_file == str(tmp_path / "ca.pem")
    assert server_config(serve.make_context("serve", []).params).egress.mode == "allowlist"
    with pytest.raises(click.BadParameter):
        serve.make_context("serve", ["--egress", "none"])


@pytest.mark.parametrize("encoding", ["base64", "latin1"])
def test_an_oversized_request_text_body_is_refused_before_it_is_decoded(encoding: str) -> None:
    """`request-text` sizes its body from the text: one over the host's limit (or the invocation's
    byte budget) is refused without the copy decoding would make — so a body that is not even valid
    base64 is `too-large`, never `invalid`."""
    from fnhost.capabilities.base import VersionGrants
    from fnhost.capabilities.errors import ErrorKind, HostCallError
    from fnhost.capabilities.http import HttpCapability
    from fnhost.capabilities.state import CallState, LogBuffer
    from fnhost.egress import Egress

    def state(bytes_left: int) -> CallState:
        grants = VersionGrants.of(Manifest.from_dict({"name": "f"}), "f")
        return CallState("i", "f", 1, grants, LogBuffer(1 << 20), calls_left=10, bytes_left=bytes_left)

    capability = HttpCapability(Egress(EgressConfig(max_request_bytes=1000)))
    try:
        body = "\u00e9" * 1001 if encoding == "latin1" else "*" * 1400  # ≥ 1,048 bytes once decoded, if it were
        for bytes_left, kind in ((1 << 20, ErrorKind.TOO_LARGE), (500, ErrorKind.LIMIT_EXCEEDED)):
            with pytest.raises(HostCallError) as refused:
                capability.request_text(state(bytes_left), "POST", "https://example.com/", [], body, encoding, None)
            assert refused.value.kind is kind, refused.value
        # at the limit it is decoded (and then this one is invalid base64, or sent and denied: no grant)
        with pytest.raises(HostCallError) as past:
            capability.request_text(state(1 << 20), "POST", "https://example.com/", [], body[:1000], encoding, None)
        assert past.value.kind in (ErrorKind.INVALID, ErrorKind.DENIED), past.value
    finally:
        capability.close()
