"""One contract, five languages: the same guests in Python, Rust, Go, C and JavaScript, deployed through
`fnhost.Host` with identical inputs, give the same outputs and the same limit outcomes.

"The same output" is the same JSON value where the output is JSON (`conftest.same_json`: key order, whitespace
and string escapes may differ between SDKs; the Go SDK writes with encoding/json, the others as
Python's json.dumps) and the same bytes where it is not (echoed bodies and payloads, plain text).

Each guest is built with its real toolchain (`fnhost.build.build_guest`, cached by source hash).
A language whose toolchain is missing fails under `just test` and CI, and is skipped (saying why)
only when pytest is run directly (conftest.missing_toolchain).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from conftest import build_or_skip, same_json

from fnhost import Host, InvocationResult, Outcome
from fnhost.build import BuiltGuest

GUESTS = Path(__file__).resolve().parents[1] / "guests"
LANGUAGES = ["python", "rust", "go", "c", "js"]

pytestmark = pytest.mark.slow


def guest(lang: str, name: str) -> BuiltGuest:
    src = GUESTS / lang / name
    if not src.is_dir():
        pytest.skip(f"no {lang} {name} guest")
    return build_or_skip(src)


def deploy(host: Host, lang: str, name: str, **limits: int) -> None:
    built = guest(lang, name)
    manifest = built.manifest
    if limits:
        manifest = dataclasses.replace(manifest, limits=dataclasses.replace(manifest.limits, **limits))
    host.deploy(name, built.wasm_path.read_bytes(), manifest)


def ok_body(r: InvocationResult) -> bytes:
    assert r.outcome is Outcome.OK, r.error
    assert r.response is not None
    return bytes(r.response.body)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hello_http(host: Host, lang: str) -> None:
    deploy(host, lang, "hello")
    r = host.invoke_http("hello", "GET", "/hello?name=x", [("accept", "*/*")], b"")
    same_json(ok_body(r), {"message": "Hello, x!"})
    assert r.response is not None and r.response.status == 200
    assert ("content-type", "application/json") in r.response.headers

    r = host.invoke_http("hello", "GET", "/hello?name=%C3%A9t%C3%A9+%22q%22+%3Cb%3E%26", [], b"")
    same_json(ok_body(r), {"message": 'Hello, \u00e9t\u00e9 "q" <b>&!'})
    same_json(ok_body(host.invoke_http("hello", "GET", "/hello", [], b"")), {"message": "Hello, world!"})

    r = host.invoke_http("hello", "PUT", "/a/b?q=1&q=2&e", [("User-Agent", "pytest")], b"12345")
    echo = {"method": "PUT", "path": "/a/b", "query": {"q": "1", "e": ""}, "user_agent": "pytest"}
    same_json(ok_body(r), {**echo, "body_length": 5, "function": "hello", "version": "1"})
    r = host.invoke_http("hello", "GET", "/", [], b"")
    echo = {"method": "GET", "path": "/", "query": {}, "user_agent": None}
    same_json(ok_body(r), {**echo, "body_length": 0, "function": "hello", "version": "1"})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hello_echo(host: Host, lang: str) -> None:
    deploy(host, lang, "hello")
    body = bytes(range(256)) * 1024
    r = host.invoke_http("hello", "POST", "/echo", [("content-type", "image/png")], body)
    assert ok_body(r) == body
    assert r.response is not None and r.response.headers == [("content-type", "image/png")]
    r = host.invoke_http("hello", "POST", "/echo", [], b"raw")
    assert ok_body(r) == b"raw"
    assert r.response is not None and r.response.headers == [("content-type", "application/octet-stream")]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hello_event(host: Host, lang: str) -> None:
    deploy(host, lang, "hello")
    # A dict is the JSON the guest writes (compared as values); bytes are echoed payloads (compared as bytes).
    cases: dict[bytes, object] = {
        b'{"name": "x"}': {"message": "Hello, x!"},
        b'{"name": "\xc3\xa9\\n\xf0\x9f\x98\x80", "name2": [1, {"a": null}]}': {"message": "Hello, \u00e9\n\U0001f600!"},
        b"\x00\x01 not json": b"\x00\x01 not json",
        b'{"name": 3}': b'{"name": 3}',
        b'["name"]': b'["name"]',
        b'{"name": "x"} trailing': b'{"name": "x"} trailing',
        b"": b"",
    }
    for payload, expected in cases.items():
        r = host.invoke("hello", payload)
        assert r.outcome is Outcome.OK, r.error
        if isinstance(expected, bytes):
            assert r.output == expected, payload
        else:
            same_json(r.output, expected)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_counter_kv(host: Host, lang: str) -> None:
    deploy(host, lang, "counter")
    for n in (1, 2):
        r = host.invoke("counter", b'{"op": "incr", "key": "k"}')
        assert r.outcome is Outcome.OK, r.error
        same_json(r.output, {"key": "k", "value": n})
    same_json(ok_body(host.invoke_http("counter", "POST", "/incr/k", [], b"")), {"key": "k", "value": 3})
    same_json(host.invoke("counter", b'{"op": "get", "key": "unset"}').output, {"key": "unset", "value": 0})
    same_json(host.invoke("counter", b'{"op": "list"}').output, {"keys": ["k"]})
    same_json(host.invoke("counter", b'{"op": "list", "prefix": "none"}').output, {"keys": []})
    r = host.invoke("counter", b'{"op": "delete", "key": "k"}')
    same_json(r.output, {"key": "k", "deleted": True})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_counter_denied_bucket(host: Host, lang: str) -> None:
    deploy(host, lang, "counter")
    r = host.invoke("counter", b'{"op": "incr", "bucket": "other", "key": "k"}')
    assert r.outcome is Outcome.OK, r.error
    out = json.loads(r.output)
    assert set(out) == {"error", "message"} and out["error"] == "denied" and "other" in out["message"]
    r = host.invoke_http("counter", "GET", "/bucket/other/k", [], b"")
    assert r.response is not None and r.response.status == 403
    assert json.loads(r.response.body)["error"] == "denied"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_chaos_limits(host: Host, lang: str) -> None:
    deploy(host, lang, "chaos", timeout_ms=500, fuel=10**15, memory_mb=64)
    assert host.invoke("chaos", b"ok").output == b"ok"
    r = host.invoke("chaos", b"loop")
    assert r.outcome is Outcome.TIMEOUT, r.error
    # The rest must not depend on the clock: on a loaded machine growing to the cap can take 500 ms.
    deploy(host, lang, "chaos", timeout_ms=10_000, fuel=10**15, memory_mb=64)
    r = host.invoke("chaos", b"alloc:200")
    assert r.outcome is Outcome.MEMORY_LIMIT, r.error
    r = host.invoke("chaos", b"trap")
    assert r.outcome is Outcome.GUEST_TRAP, r.error
    r = host.invoke("chaos", b"raise")
    assert r.outcome is Outcome.GUEST_ERROR and "chaos: raised on purpose" in (r.error or "")
    same_json(host.invoke("chaos", b"alloc:8").output, {"allocated_mb": 8})


@pytest.mark.parametrize("lang", ["rust", "go", "c"])
def test_sleeping_core_guest_stops_at_its_timeout(host: Host, lang: str) -> None:
    # A WASI sleep blocks in the host, where epochs cannot reach: fnhost's poll_oneoff ends it.
    deploy(host, lang, "chaos", timeout_ms=300)
    t0 = time.monotonic()
    r = host.invoke("chaos", b"sleep:60000")
    assert r.outcome is Outcome.TIMEOUT, r.error
    assert time.monotonic() - t0 < 0.6
    assert host.invoke("chaos", b"sleep:20").outcome is Outcome.OK  # short sleeps still work


@pytest.mark.parametrize(("lang", "where"), [("rust", "src/lib.rs:"), ("go", "chaos/main.go:")])
def test_a_panic_names_its_source_line_in_the_logs(host: Host, lang: str, where: str) -> None:
    deploy(host, lang, "chaos")
    r = host.invoke("chaos", b"trap")
    assert r.outcome is Outcome.GUEST_TRAP
    assert any(where in line and "/work" not in line for line in r.logs), r.logs  # relative to the guest
