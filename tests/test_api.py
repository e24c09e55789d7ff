"""The HTTP API against the real app: real SQLite, real guests built with fnhost.build, real Host.

Guests: guests/rust/hello (public HTTP echo, greets on invoke) and guests/rust/chaos (misbehaves on
command), deployed under several manifests. Compiled code is shared across tests (content-addressed).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CACHE_DIR, COMPILED
from openapi_spec_validator import validate
from starlette.routing import Route

from fnhost import Host
from fnhost.api import create_app
from fnhost.build import build_guest
from fnhost.control import ApiKeys, bundle_digest, generate_signing_key, pack_bundle, sign_bundle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette suggests httpx2 for its TestClient
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
HELLO = 'name = "hello"\n\n[env]\nGREETING = "Hello"\n\n[http]\npublic = true\n'
PRIVATE = 'name = "private"\n'
CHAOS = 'name = "chaos"\n\n[limits]\nmemory_mb = 16\ntimeout_ms = 300\nfuel = 200000000\n'
SLOW = 'name = "slow"\n\n[limits]\ntimeout_ms = 10000\nmax_concurrency = 1\n'


@pytest.fixture(scope="session")
def wasm() -> dict[str, bytes]:
    """The guests' binaries, built once per session (and cached across sessions by source hash)."""
    return {
        name: build_guest(ROOT / "guests" / "rust" / name, cache_dir=CACHE_DIR).wasm_path.read_bytes()
        for name in ("hello", "chaos")
    }


@dataclass
class Api:
    client: TestClient
    host: Host
    admin: str
    data_dir: Path

    @staticmethod
    def auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.auth(token), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def key(self, *scopes: str, functions: list[str] | None = None) -> str:
        r = self.call("POST", "/v1/keys", self.admin, json={"name": "test", "scopes": scopes, "functions": functions})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def deploy(self, name: str, bundle: bytes, token: str | None = None) -> Any:
        return self.call("PUT", f"/v1/functions/{name}", token or self.admin, content=bundle)


def start_api(data_dir: Path, **options: Any) -> tuple[Api, Callable[[], None]]:
    host = Host(data_dir, cache_dir=COMPILED)
    admin_file = host.open_store(ApiKeys).ensure_bootstrap_admin(data_dir)
    admin = admin_file.read_text().strip() if admin_file else ""
    client = TestClient(create_app(host, **options), raise_server_exceptions=False)
    client.__enter__()  # one event loop for every request, as under Hypercorn

    def stop() -> None:
        client.__exit__(None, None, None)
        host.close()

    return Api(client, host, admin, data_dir), stop


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    stops: list[Callable[[], None]] = []

    def make(data_dir: Path | None = None, **options: Any) -> Api:
        api, stop = start_api(data_dir or tmp_path / f"data{len(stops)}", **options)
        stops.append(stop)
        return api

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code, body
    assert body["message"]
    assert r.headers["x-request-id"] == body["request_id"]
    return dict(body)


# functions -----------------------------------------------------------------------------------------
def test_deploy_list_invoke_rollback_delete(api: Api, wasm: dict[str, bytes]) -> None:
    v1 = pack_bundle(HELLO, wasm["hello"])
    r = api.deploy("hello", v1)
    assert r.status_code == 201, r.text
    assert r.json() | {"created_at": 0} == {
        "name": "hello",
        "version": 1,
        "sha256": r.json()["sha256"],
        "created": True,
        "created_at": 0,
        "live_version": 1,
    }
    again = api.deploy("hello", v1)
    assert (again.status_code, again.json()["version"], again.json()["created"]) == (200, 1, False)
    r = api.deploy("hello", pack_bundle(HELLO.replace("Hello", "Howdy"), wasm["hello"]))
    assert (r.status_code, r.json()["version"]) == (201, 2)

    listed = api.call("GET", "/v1/functions", api.admin).json()["functions"]
    assert [(f["name"], f["latest_version"]) for f in listed] == [("hello", 2)]
    versions = api.call("GET", "/v1/functions/hello/versions", api.admin).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["manifest"]["env"] == {"GREETING": "Howdy"}
    assert api.call("GET", "/v1/functions/hello", api.admin).json()["name"] == "hello"

    r = api.call("POST", "/v1/functions/hello/invoke", api.admin, content=b'{"name": "api"}')
    assert r.status_code == 200
    assert r.content == b'{"message":"Hello, api!"}'
    assert r.headers["x-fnhost-outcome"] == "ok"
    assert r.headers["x-fnhost-version"] == "2"
    invocation_id = r.headers["x-fnhost-invocation-id"]

    # Roll back: pin live to version 1; a qualifier still reaches version 2.
    r = api.call("PUT", "/v1/functions/hello/aliases/live", api.admin, json={"version": 1})
    assert r.json() == {"name": "hello", "alias": "live", "version": 1}
    assert api.call("POST", "/v1/functions/hello/invoke", api.admin).headers["x-fnhost-version"] == "1"
    r = api.call("POST", "/v1/functions/hello/invoke?qualifier=2", api.admin)
    assert r.headers["x-fnhost-version"] == "2"
    error(api.call("POST", "/v1/functions/hello/invoke?qualifier=prod", api.admin), 404, "not_found")
    error(api.call("PUT", "/v1/functions/hello/aliases/prod", api.admin, json={"version": 9}), 404, "not_found")
    error(api.call("PUT", "/v1/functions/hello/aliases/prod", api.admin, json={"version": "1"}), 400, "invalid_request")

    # While live is pinned, a deploy says so; unpinning (DELETE .../aliases/live) makes it follow again.
    r = api.deploy("hello", pack_bundle(HELLO.replace("Hello", "Hi"), wasm["hello"]))
    assert (r.json()["version"], r.json()["live_version"]) == (3, 1)
    r = api.call("DELETE", "/v1/functions/hello/aliases/live", api.admin)
    assert r.json() == {"name": "hello", "alias": "live", "version": 3, "pinned": False}
    assert api.call("POST", "/v1/functions/hello/invoke", api.admin).headers["x-fnhost-version"] == "3"
    assert api.call("PUT", "/v1/functions/hello/aliases/prod", api.admin, json={"version": 2}).status_code == 200
    r = api.call("DELETE", "/v1/functions/hello/aliases/prod", api.admin)
    assert r.json() == {"name": "hello", "alias": "prod", "deleted": True}
    error(api.call("DELETE", "/v1/functions/hello/aliases/prod", api.admin), 404, "not_found")
    error(api.call("DELETE", "/v1/functions/nosuch/aliases/live", api.admin), 404, "not_found")

    record = api.call("GET", f"/v1/invocations/{invocation_id}", api.admin).json()
    assert (record["function"], record["outcome"], record["version"]) == ("hello", "ok", 2)
    assert record["report"].startswith(f"REPORT RequestId: {invocation_id}")
    listed = api.call("GET", "/v1/functions/hello/invocations?limit=2", api.admin).json()["invocations"]
    assert len(listed) == 2 and listed[0]["started_at"] >= listed[1]["started_at"]

    assert api.call("DELETE", "/v1/functions/hello", api.admin).json() == {"name": "hello", "deleted": True}
    error(api.call("GET", "/v1/functions/hello", api.admin), 404, "not_found")
    error(api.call("POST", "/v1/functions/hello/invoke", api.admin), 404, "not_found")
    assert api.call("GET", "/v1/functions", api.admin).json() == {"functions": []}


def test_function_url_passes_the_request_through(api: Api, wasm: dict[str, bytes]) -> None:
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    r = api.call("POST", "/fn/hello/some/path?a=1&b=two", content=b"12345", headers={"user-agent": "t/1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-fnhost-outcome"] == "ok"
    assert r.json() == {
        "method": "POST",
        "path": "/some/path",
        "query": {"a": "1", "b": "two"},
        "user_agent": "t/1",
        "body_length": 5,
        "function": "hello",
        "version": "1",
    }
    assert api.call("GET", "/fn/hello").json()["path"] == "/"
    r = api.call("PUT", "/fn/hello/echo", content=b"\x00\xffraw", headers={"content-type": "image/x-test"})
    assert (r.content, r.headers["content-type"]) == (b"\x00\xffraw", "image/x-test")
    error(api.call("GET", "/fn/nope/x"), 401, "unauthorized")  # no key: existence is not revealed
    error(api.call("GET", "/fn/nope/x", api.admin), 404, "not_found")


def test_a_function_url_query_that_is_not_utf8_is_a_400_that_says_so(api: Api, wasm: dict[str, bytes]) -> None:
    """Raw bytes over 0x7f in the query (clients percent-encode them; Hypercorn refuses them, another ASGI
    server an embedder runs may not) were a UnicodeDecodeError, a 500; valid UTF-8 reaches the guest as sent."""
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))

    def get(query: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/fn/hello/x", "raw_path": b"/fn/hello/x", "query_string": query, "root_path": "",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {api.admin}".encode())],
            "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {},
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    status, body = get(b"name=\xff\xfe")
    assert status == 400 and b"the query string is not UTF-8; percent-encode its bytes" in body, body
    status, body = get("name=é".encode())
    assert status == 200 and json.loads(body)["query"] == {"name": "é"}, body


def test_a_guest_cannot_set_the_invocation_headers_or_the_framing(api: Api) -> None:
    """X-Fnhost-Outcome / -Version / -Invocation-Id are fnhost's word on what ran, and the framing is the
    server's: a guest's own values for them are dropped, its other headers pass."""
    from wat_guests import http_answer

    answer = http_answer(200, [("X-Fnhost-Outcome", "spoofed"), ("x-fnhost-version", "99"),
                               ("X-Fnhost-Invocation-Id", "inv_fake"), ("Content-Length", "5"), ("X-Custom", "kept")],
                         b"hi")  # fmt: skip
    api.host.deploy("says", answer, {"name": "says", "http": {"public": True}})
    r = api.call("GET", "/fn/says/x")
    assert r.status_code == 200 and r.content == b"hi"
    for name, value in (("x-fnhost-outcome", "ok"), ("x-fnhost-version", "1"), ("content-length", "2"),
                        ("x-custom", "kept")):  # fmt: skip
        assert r.headers.get_list(name) == [value], (name, r.headers.raw)
    assert r.headers["x-fnhost-invocation-id"] != "inv_fake"


def test_invocation_failures_map_to_statuses(api: Api, wasm: dict[str, bytes]) -> None:
    api.deploy("chaos", pack_bundle(CHAOS, wasm["chaos"]))
    cases = [
        ("trap", 502, "guest_trap"),
        ("raise", 502, "guest_error"),
        ("loop", 502, "fuel_exhausted"),
        ("sleep:600", 504, "timeout"),
    ]
    for command, status, outcome in cases:
        r = api.call("POST", "/v1/functions/chaos/invoke", api.admin, content=command.encode())
        body = error(r, status, outcome)
        assert r.headers["x-fnhost-outcome"] == outcome
        assert r.headers["x-fnhost-invocation-id"] == body["invocation_id"]
        record = api.call("GET", f"/v1/invocations/{body['invocation_id']}", api.admin).json()
        assert record["outcome"] == outcome and f"Outcome: {outcome}" in record["report"]
    metrics = api.call("GET", "/metrics", api.admin).text
    assert 'fnhost_invocation_errors_total{function="chaos",outcome="fuel_exhausted"} 1.0' in metrics
    assert 'fnhost_invocations_total{function="chaos",outcome="timeout",trigger="invoke"} 1.0' in metrics
    assert 'fnhost_invocation_duration_seconds_count{function="chaos"} 4.0' in metrics
    assert 'fnhost_fuel_consumed_total{function="chaos"}' in metrics


# authorization ---------------------------------------------------------------------------------------
def test_authorization_matrix(api: Api, wasm: dict[str, bytes]) -> None:
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    api.deploy("private", pack_bundle(PRIVATE, wasm["hello"]))
    api.deploy("doomed", pack_bundle('name = "doomed"\n', wasm["hello"]))
    invocation = api.call("POST", "/v1/functions/private/invoke", api.admin).headers["x-fnhost-invocation-id"]
    deployer, invoker = api.key("deploy"), api.key("invoke")
    other_invoker = api.key("invoke", functions=["hello"])
    spare_key_id = api.call("POST", "/v1/keys", api.admin, json={"name": "spare", "scopes": ["invoke"]}).json()[
        "key_id"
    ]
    bundle = pack_bundle(PRIVATE, wasm["hello"])
    # (method, path, body, a key that is refused (None: none is), the key that is allowed): refused with
    # 403, or 404 when the key may not even know the function exists (a key limited to other functions)
    matrix: list[tuple[str, str, dict[str, Any], str | None, str]] = [
        ("GET", "/v1/functions", {}, None, invoker),
        ("GET", "/v1/functions/private", {}, other_invoker, invoker),
        ("GET", "/v1/functions/private/versions", {}, other_invoker, deployer),
        ("GET", "/v1/functions/private/invocations", {}, other_invoker, invoker),
        ("GET", f"/v1/invocations/{invocation}", {}, other_invoker, deployer),
        ("PUT", "/v1/functions/private", {"content": bundle}, invoker, deployer),
        ("PUT", "/v1/functions/private/aliases/prod", {"json": {"version": 1}}, invoker, deployer),
        ("POST", "/v1/functions/private/invoke", {}, deployer, invoker),
        ("GET", "/fn/private/x", {}, deployer, invoker),
        ("POST", "/fn/private", {"content": b"x"}, other_invoker, invoker),
        ("PUT", "/v1/secrets/db-password", {"json": {"value": "s3cret"}}, deployer, api.admin),
        ("GET", "/v1/secrets", {}, invoker, api.admin),
        ("DELETE", "/v1/secrets/db-password", {}, deployer, api.admin),
        ("POST", "/v1/keys", {"json": {"name": "k", "scopes": ["invoke"]}}, deployer, api.admin),
        ("GET", "/v1/keys", {}, invoker, api.admin),
        ("DELETE", f"/v1/keys/{spare_key_id}", {}, deployer, api.admin),
        ("GET", "/v1/audit", {}, deployer, api.admin),
        ("GET", "/v1/audit/verify", {}, invoker, api.admin),
        ("DELETE", "/v1/functions/doomed", {}, invoker, deployer),
    ]
    for method, path, body, refused, allowed in matrix:
        where = f"{method} {path}"
        assert api.call(method, path, None, **body).status_code == 401, where
        assert api.call(method, path, "fnh_0000000000000000_" + "x" * 43, **body).status_code == 401, where
        if refused is not None:
            r = api.call(method, path, refused, **body)
            status, code = (404, "not_found") if refused == other_invoker else (403, "forbidden")
            assert r.status_code == status, f"{where}: {r.text}"
            assert r.json()["error"]["code"] == code
        r = api.call(method, path, allowed, **body)
        assert 200 <= r.status_code < 300, f"{where}: {r.text}"

    # No key needed: public function URLs, health, metrics, the OpenAPI document.
    for path in ("/fn/hello/x", "/healthz", "/metrics", "/v1/openapi.json"):
        assert api.call("GET", path).status_code == 200, path
    # A function-limited key only lists its functions; a revoked key is refused.
    listed = api.call("GET", "/v1/functions", other_invoker).json()["functions"]
    assert [f["name"] for f in listed] == ["hello"]
    revoked = api.key("invoke")
    api.call("DELETE", f"/v1/keys/{revoked.split('_')[1]}", api.admin)
    body = error(api.call("POST", "/v1/functions/hello/invoke", revoked), 401, "unauthorized")
    assert "revoked" in body["message"]
    assert api.call("POST", "/v1/keys/x", api.admin).status_code == 405

    entries = api.call("GET", "/v1/audit?limit=1000", api.admin).json()["entries"]
    denied = [e for e in entries if e["action"] == "auth.denied"]
    assert {e["outcome"] for e in denied} == {"unauthorized", "forbidden", "not_found"}
    assert any(e["actor_key_id"] == deployer.split("_")[1] for e in denied)
    actions = {e["action"] for e in entries if e["outcome"] == "ok"}
    assert {
        "function.deploy",
        "function.alias",
        "function.delete",
        "secret.set",
        "secret.delete",
        "key.create",
        "key.revoke",
    } <= actions
    assert all(e["request_id"] for e in entries)


def test_request_id_is_echoed_and_errors_share_one_shape(api: Api) -> None:
    r = api.call("GET", "/healthz", headers={"X-Request-Id": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    error(api.call("GET", "/no/such/route"), 404, "not_found")
    error(api.call("DELETE", "/v1/functions", api.admin), 405, "method_not_allowed")
    error(api.call("PUT", "/v1/secrets/x", api.admin, content=b"{not json"), 400, "invalid_request")
    error(api.call("POST", "/v1/keys", api.admin, json={"name": "k", "scopes": ["root"]}), 400, "invalid_request")
    r = api.call("GET", "/v1/functions", headers={"X-Request-Id": "audit-me"})
    error(r, 401, "unauthorized")
    entries = api.call("GET", "/v1/audit", api.admin).json()["entries"]
    assert any(e["request_id"] == "audit-me" and e["action"] == "auth.denied" for e in entries)


# hostile input ---------------------------------------------------------------------------------------
def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


def test_hostile_bundles_are_refused_and_nothing_is_stored(
    make_api: Callable[..., Api], wasm: dict[str, bytes]
) -> None:
    private_pem, public_key = generate_signing_key()
    api = make_api(trusted_keys=[public_key], max_bundle_bytes=1 << 20)
    hello = wasm["hello"]
    manifest = PRIVATE
    signature = sign_bundle(bundle_digest(manifest, hello), private_pem)

    def signed(manifest_text: str, module: bytes) -> bytes:
        return pack_bundle(
            manifest_text, module, signature=sign_bundle(bundle_digest(manifest_text, module), private_pem)
        )

    cases = [
        (b"definitely not a zip", 400, "invalid_bundle"),
        (_zip([("function.wasm", hello)]), 400, "invalid_bundle"),  # no fnhost.toml
        (_zip([("fnhost.toml", manifest.encode()), ("../function.wasm", hello)]), 400, "invalid_bundle"),
        (_zip([("fnhost.toml", manifest.encode()), ("function.wasm", b"\0" * 900_000)]), 413, "bundle_too_large"),
        (
            _zip([("fnhost.toml", b'name = "private"\n[limits]\nmemory_mb = 0\n'), ("function.wasm", hello)]),
            400,
            "invalid_bundle",
        ),
        (signed(manifest, b"\0asm\x01\0\0\0garbage"), 400, "invalid_wasm"),
        (pack_bundle(manifest, hello), 400, "invalid_signature"),  # unsigned
        (pack_bundle(manifest, hello + b"\0", signature=signature), 400, "invalid_signature"),  # tampered
        (signed('name = "hello"\n', hello), 400, "invalid_request"),  # not the name in the URL
        (b"PK" + b"\0" * (2 << 20), 413, "payload_too_large"),
    ]
    for body, status, code in cases:
        error(api.deploy("private", body), status, code)
    assert api.call("GET", "/v1/functions", api.admin).json() == {"functions": []}
    assert list((api.data_dir / "wasm").iterdir()) == []
    failed = [
        e
        for e in api.call("GET", "/v1/audit?limit=1000", api.admin).json()["entries"]
        if e["action"] == "function.deploy"
    ]
    assert len(failed) == len(cases) - 1  # the 413 is refused before the handler runs
    assert all(e["outcome"] != "ok" for e in failed)

    r = api.deploy("private", pack_bundle(manifest, hello, signature=signature))
    assert r.status_code == 201, r.text


def test_body_limit_is_enforced_while_streaming(make_api: Callable[..., Api], wasm: dict[str, bytes]) -> None:
    api = make_api(max_body_bytes=1024)
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    assert api.call("POST", "/v1/functions/hello/invoke", api.admin, content=b"x" * 1024).status_code == 200
    error(api.call("POST", "/v1/functions/hello/invoke", api.admin, content=b"x" * 1025), 413, "payload_too_large")
    error(api.call("POST", "/fn/hello/echo", content=b"x" * 5000), 413, "payload_too_large")

    # A chunked body (no Content-Length) is cut off at the first chunk over the limit, not read to the end.
    app = api.client.app
    chunks_read = 0

    async def receive() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"y" * 512, "more_body": chunks_read < 1000}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/fn/hello/echo",
        "raw_path": b"/fn/hello/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    import anyio

    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert chunks_read == 3


# state ---------------------------------------------------------------------------------------------------
def test_audit_tampering_is_detected_through_the_api(api: Api, wasm: dict[str, bytes]) -> None:
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    api.call("PUT", "/v1/secrets/token", api.admin, json={"value": "v"})
    verified = api.call("GET", "/v1/audit/verify", api.admin).json()
    assert verified == {"ok": True, "checked": 2, "first_broken_id": None, "reason": None}
    with sqlite3.connect(api.data_dir / "fnhost.db") as db:
        db.execute("UPDATE audit_log SET target = 'someone-else' WHERE id = 1")
    verified = api.call("GET", "/v1/audit/verify", api.admin).json()
    assert (verified["ok"], verified["first_broken_id"]) == (False, 1)
    assert "edited" in verified["reason"]


def test_state_survives_a_restart(tmp_path: Path, wasm: dict[str, bytes]) -> None:
    data_dir = tmp_path / "data"
    api, stop = start_api(data_dir)
    try:
        api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
        api.deploy("hello", pack_bundle(HELLO.replace("Hello", "Hi"), wasm["hello"]))
        api.call("PUT", "/v1/functions/hello/aliases/stable", api.admin, json={"version": 1})
        api.call("PUT", "/v1/secrets/api-token", api.admin, json={"value": "kept"})
        invoker = api.key("invoke")
        admin = api.admin
    finally:
        stop()

    api, stop = start_api(data_dir)  # a new Host and app on the same data dir
    try:
        assert api.admin == ""  # no second bootstrap key
        r = api.call("POST", "/v1/functions/hello/invoke?qualifier=stable", invoker, content=b'{"name": "again"}')
        assert (r.status_code, r.headers["x-fnhost-version"]) == (200, "1")
        assert api.call("GET", "/v1/secrets", admin).json() == {"secrets": ["api-token"]}
        assert api.host.secrets.get("api-token") == "kept"
        assert api.call("GET", "/v1/audit/verify", admin).json()["ok"] is True
        assert len(api.call("GET", "/v1/keys", admin).json()["keys"]) == 2
    finally:
        stop()


# limits ----------------------------------------------------------------------------------------------------
def _hold_one_invocation(api: Api, path: str, body: bytes) -> threading.Thread:
    """Start a slow invocation in a thread and return once the server has it in flight."""
    thread = threading.Thread(target=api.call, args=("POST", path, api.admin), kwargs={"content": body})
    thread.start()
    deadline = time.monotonic() + 10
    while api.call("GET", "/healthz").json()["invocations_in_flight"] < 1:
        assert time.monotonic() < deadline, "the slow invocation never started"
        time.sleep(0.01)
    time.sleep(0.2)  # from admitted to running inside the Host
    return thread


def test_function_concurrency_limit_answers_429(api: Api, wasm: dict[str, bytes]) -> None:
    api.deploy("slow", pack_bundle(SLOW, wasm["chaos"]))
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    thread = _hold_one_invocation(api, "/v1/functions/slow/invoke", b"sleep:1500")
    try:
        r = api.call("POST", "/v1/functions/slow/invoke", api.admin, content=b"ok")
        body = error(r, 429, "throttled")
        assert "max_concurrency" in body["message"]
        assert r.headers["retry-after"] == "1"
        # Other functions are not affected by one function's limit.
        assert api.call("POST", "/v1/functions/hello/invoke", api.admin).status_code == 200
    finally:
        thread.join()
    assert api.call("POST", "/v1/functions/slow/invoke", api.admin, content=b"ok").status_code == 200
    assert 'fnhost_throttles_total{function="slow",limit="function"} 1.0' in api.call("GET", "/metrics", api.admin).text


def test_global_concurrency_limit_answers_429(make_api: Callable[..., Api], wasm: dict[str, bytes]) -> None:
    api = make_api(global_concurrency=1, workers=2)
    api.deploy("slow", pack_bundle(SLOW, wasm["chaos"]))
    api.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    thread = _hold_one_invocation(api, "/v1/functions/slow/invoke", b"sleep:1000")
    try:
        r = api.call("GET", "/fn/hello/x")
        body = error(r, 429, "throttled")
        assert "--global-concurrency 1" in body["message"] and r.headers["retry-after"] == "1"
    finally:
        thread.join()
    assert api.call("GET", "/fn/hello/x").status_code == 200
    assert 'fnhost_throttles_total{function="hello",limit="global"} 1.0' in api.call("GET", "/metrics", api.admin).text


def test_read_only_serves_functions_and_refuses_the_control_plane(
    tmp_path: Path, make_api: Callable[..., Api], wasm: dict[str, bytes]
) -> None:
    writer = make_api(tmp_path / "edge")
    writer.deploy("hello", pack_bundle(HELLO, wasm["hello"]))
    admin = writer.admin
    edge = make_api(tmp_path / "edge", read_only=True)
    assert edge.call("GET", "/fn/hello/x").status_code == 200
    assert edge.call("POST", "/v1/functions/hello/invoke", admin).status_code == 200
    assert edge.call("GET", "/v1/functions", admin).status_code == 200
    refused = [
        ("PUT", "/v1/functions/hello"),
        ("DELETE", "/v1/functions/hello"),
        ("PUT", "/v1/functions/hello/aliases/x"),
        ("PUT", "/v1/secrets/x"),
        ("DELETE", "/v1/secrets/x"),
        ("GET", "/v1/secrets"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys"),
        ("DELETE", "/v1/keys/x"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/verify"),
    ]
    for method, path in refused:
        body = error(edge.call(method, path, admin), 405, "read_only")
        assert "read-only" in body["message"], path
    assert edge.call("GET", "/healthz").json()["read_only"] is True


# the document ------------------------------------------------------------------------------------------------
def test_openapi_is_valid_and_lists_every_route(api: Api) -> None:
    document = api.call("GET", "/v1/openapi.json").json()
    validate(document)
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    for route in api.client.app.routes:
        if route.path in ("/console", "/"):  # the web console (docs/console.md), not the JSON API
            continue
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):path\}", r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD" or path.startswith("/fn/"):
                assert (path, method) in documented, (path, method)
