"""The outbound-http contract in every guest language (guests/<lang>/fetch, contract 0.2.0): a
request to a real local server granted literally, a denial, and a timeout, each as the SDK of
that language reports it. The SSRF rules and caps are the host's, tried once in test_egress.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import COMPILED, build_or_skip
from egress_servers import Server

from fnhost import Host, Outcome

GUESTS = Path(__file__).resolve().parents[1] / "guests"
LANGS = ["python", "rust", "go", "c", "js"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Host, Server, Server]]:
    server, ungranted = Server(), Server()
    host = Host(tmp_path_factory.mktemp("egress-guests") / "data", cache_dir=COMPILED)
    yield host, server, ungranted
    host.close()
    server.close()
    ungranted.close()


def deployed(host: Host, lang: str, origin: str, **limits: int) -> str:
    built = build_or_skip(GUESTS / lang / "fetch")
    name = f"fetch-{lang}" + ("-short" if limits else "")
    manifest = dataclasses.replace(
        built.manifest, name=name, limits=dataclasses.replace(built.manifest.limits, **limits)
    )
    host.deploy(name, built.wasm_path.read_bytes(), {**manifest.to_dict(), "grants": {"http": [origin]}})
    return name


def call(host: Host, name: str, **args: Any) -> dict[str, Any]:
    r = host.invoke(name, json.dumps(args).encode())
    assert r.outcome is Outcome.OK, r.error
    out: dict[str, Any] = json.loads(r.output)
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_outbound_http_in_every_guest_language(world: tuple[Host, Server, Server], lang: str) -> None:
    host, server, ungranted = world
    name = deployed(host, lang, server.origin)
    # `headers` for the SDKs with a JSON object reader, `token` for C's string-field reader
    out = call(
        host,
        name,
        url=f"{server.origin}/echo?lang={lang}",
        method="POST",
        body="hi",
        headers={"x-token": "t"},
        token="t",
    )
    assert out["status"] == 200, out
    echoed = json.loads(out["body"])
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", f"/echo?lang={lang}", "hi")
    assert {k.lower(): v for k, v in echoed["headers"].items()}["x-token"] == "t"
    assert ["x-echo", "1"] in out["headers"]
    assert call(host, name, url=f"{server.origin}/status?code=404")["status"] == 404

    denied = call(host, name, url=f"{ungranted.origin}/echo")
    assert denied["error"] == "denied" and f"'{ungranted.origin}'" in denied["message"], denied
    assert ungranted.seen == []


def test_python_bodies_cross_as_text_whatever_bytes_they_hold(world: tuple[Host, Server, Server]) -> None:
    """The Python SDK sends and receives bodies through `request-text` (latin-1 for ASCII, base64
    otherwise, the host choosing the response's): non-ASCII bytes come back exactly."""
    host, server, _ = world
    name = deployed(host, "python", server.origin)
    for body in ["héllo ✓ — ünïcode", "plain ascii", ""]:
        out = call(host, name, url=f"{server.origin}/raw", method="POST", body=body)
        assert out["status"] == 200 and out["body"] == body, out
        assert server.seen[-1][0] == "POST"


@pytest.mark.parametrize("lang", LANGS)
def test_a_request_past_the_invocation_time_is_a_timeout_error(world: tuple[Host, Server, Server], lang: str) -> None:
    host, server, _ = world
    name = deployed(host, lang, server.origin, timeout_ms=2000)
    out = call(host, name, url=f"{server.origin}/trickle")  # the host leaves the guest time to answer
    assert out["error"] == "timeout" and "remaining time" in out["message"], out
