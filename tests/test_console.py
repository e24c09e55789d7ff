"""The web console against a real `fnhost serve` (Hypercorn, SQLite), as an attacker would try it with
plain httpx: CSRF, origins, cookies, revoked keys, a key limited to one function or namespace, HTML
injection, oversized uploads. The browser's own run is tests/test_console_browser.py."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import wat_guests
from console_client import csrf_of, sign_in
from test_e2e import _env, fnhost, server

from fnhost.control import pack_bundle
from fnhost.stores.database import Database, PostgresDatabase
from fnhost.stores.sessions import SessionStore

pytestmark = pytest.mark.slow

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CONSUMER = """name = "consumer"
[[triggers.queue]]
queue = "jobs"
max_receive_count = 1
visibility_timeout_s = 10
"""
SCHEDULED = """name = "other"
[[triggers.schedule]]
name = "nightly-other"
cron = "0 3 * * *"
"""


class Site:
    def __init__(self, url: str, admin: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.admin = admin
        self.api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        self.tokens: dict[str, str] = {}

    def deploy(self, name: str, manifest: str, wasm: bytes, namespace: str | None = None) -> None:
        prefix = f"/v1/namespaces/{namespace}" if namespace else "/v1"
        r = self.api.put(f"{prefix}/functions/{name}", content=pack_bundle(manifest, wasm))
        assert r.status_code in (200, 201), r.text

    def key(self, label: str, **body: Any) -> str:
        r = self.api.post("/v1/keys", json={"name": label, **body})
        assert r.status_code == 201, r.text
        self.tokens[label] = r.json()["token"]
        return str(r.json()["token"])

    def function(self, name: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/functions/{name}").json())

    def audit(self) -> list[dict[str, Any]]:
        return list(self.api.get("/v1/audit?limit=1000").json()["entries"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    with server(data_dir) as url:
        s = Site(url, (data_dir / "admin.key").read_text().strip(), data_dir)
        s.deploy("mine", 'name = "mine"\n', wat_guests.LOG_PAYLOAD)
        s.deploy("other", SCHEDULED, wat_guests.LOG_PAYLOAD)
        s.deploy("other", SCHEDULED + "\n[env]\nV = '2'\n", wat_guests.LOG_PAYLOAD)  # version 2
        s.deploy("consumer", CONSUMER, wat_guests.FAILS)
        s.deploy("team-fn", 'name = "team-fn"\n', wat_guests.ECHO, namespace="team-a")
        s.key("limited", scopes=["deploy", "invoke"], functions=["mine"])
        s.key("invoker", scopes=["invoke"])
        s.key("team-admin", scopes=["admin"], namespace="team-a")
        r = s.api.post("/v1/functions/other/invoke", content=b"other's secret log line")
        s.other_invocation = r.headers["x-fnhost-invocation-id"]  # type: ignore[attr-defined]
        assert s.api.post("/v1/queues/jobs/messages", content=b"job 1").status_code == 201
        deadline = time.monotonic() + 30
        while not s.api.get("/v1/queues/jobs-dlq/messages").json()["messages"]:
            assert time.monotonic() < deadline, "the failing consumer never dead-lettered its message"
            time.sleep(0.1)
        yield s


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_sign_in_sets_a_strict_session_cookie_and_strict_headers(site: Site) -> None:
    client = httpx.Client(base_url=site.url, headers={"origin": site.url})
    form = client.get("/console/signin")
    assert form.status_code == 200
    csp = form.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert form.headers["x-frame-options"] == "DENY" and form.headers["cache-control"] == "no-store"
    r = client.post("/console/signin", data={"key": site.admin, "csrf": csrf_of(form.text)})
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("fnhost_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # served over http here; over https the cookie is Secure
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) == 43
    page = client.get("/console/functions")
    assert page.status_code == 200 and "mine" in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/console/static/console.js" defer>']
    assert client.get("/console/static/console.js").status_code == 200


def test_the_server_keeps_only_a_hash_of_the_session_id(site: Site) -> None:
    client, _ = sign_in(site.url, site.admin)
    session_id = client.cookies["fnhost_session"]
    raw = b"".join(f.read_bytes() for f in site.data_dir.glob("fnhost.db*"))  # the database, its WAL included
    assert hashlib.sha256(session_id.encode()).hexdigest().encode() in raw
    assert session_id.encode() not in raw


def test_a_wrong_key_at_sign_in_is_refused_clearly_and_counted_like_the_api(site: Site) -> None:
    client = httpx.Client(base_url=site.url, headers={"origin": site.url})
    before = len([e for e in site.audit() if e["action"].startswith("auth.denied")])
    for key in ("fnh_0123456789abcdef_" + "A" * 43, "not a key"):
        form = client.get("/console/signin")
        r = client.post("/console/signin", data={"key": key, "csrf": csrf_of(form.text)})
        assert r.status_code == 401
        assert "sign-in refused: unknown API key; check the token" in r.text or "malformed API key" in r.text
        assert "Authorization: Bearer" not in _text(r.text)  # the API's header hint means nothing in a form
        assert "fnhost_session" not in r.headers.get("set-cookie", "")
    denied = [e for e in site.audit() if e["action"].startswith("auth.denied")]
    assert len(denied) > before
    assert any(e["target"] == "POST /console/signin" for e in denied)


def test_sign_in_needs_its_own_csrf_cookie_and_origin(site: Site) -> None:
    client = httpx.Client(base_url=site.url, headers={"origin": site.url})
    token = csrf_of(client.get("/console/signin").text)
    fresh = httpx.Client(base_url=site.url, headers={"origin": site.url})  # no sign-in cookie: login CSRF
    r = fresh.post("/console/signin", data={"key": site.admin, "csrf": token})
    assert r.status_code == 403 and "CSRF token is wrong" in r.text and "fnhost_session" not in str(r.headers)
    evil = client.post("/console/signin", data={"key": site.admin, "csrf": token}, headers={"origin": "http://evil.test"})
    assert evil.status_code == 403 and "not from this console" in evil.text


def test_a_post_without_the_csrf_token_or_with_another_sessions_is_refused_and_changes_nothing(site: Site) -> None:
    client, csrf = sign_in(site.url, site.admin)
    _, other_csrf = sign_in(site.url, site.admin)
    live = site.function("other")["aliases"]
    for data in ({"alias": "live", "version": "1"}, {"alias": "live", "version": "1", "csrf": other_csrf},
                 {"alias": "live", "version": "1", "csrf": ""}):  # fmt: skip
        r = client.post("/console/functions/other/aliases", data=data)
        assert r.status_code == 403 and "CSRF token is missing or wrong" in r.text and "nothing was changed" in r.text
    assert site.function("other")["aliases"] == live
    r = client.post("/console/keys", data={"name": "sneaky", "scopes": "admin"})
    assert r.status_code == 403
    assert not any(k["name"] == "sneaky" for k in site.api.get("/v1/keys").json()["keys"])
    # the real token works (and is then undone)
    assert client.post("/console/functions/other/aliases", data={"alias": "canary", "version": "1", "csrf": csrf}).status_code == 303
    assert client.post("/console/functions/other/aliases/canary/remove", data={"csrf": csrf}).status_code == 303


def test_a_cross_origin_post_is_refused_even_with_the_token(site: Site) -> None:
    client, csrf = sign_in(site.url, site.admin)
    data = {"alias": "evil", "version": "1", "csrf": csrf}
    for headers in ({"origin": "http://evil.test"}, {"origin": "null"},
                    {"origin": site.url.replace("127.0.0.1", "localhost")}):  # fmt: skip
        r = client.post("/console/functions/other/aliases", data=data, headers=headers)
        assert r.status_code == 403 and "not from this console" in r.text
    no_origin = httpx.Client(base_url=site.url, cookies=client.cookies)
    r = no_origin.post("/console/functions/other/aliases", data=data)
    assert r.status_code == 403 and "neither an Origin nor a Referer" in r.text
    r = no_origin.post("/console/functions/other/aliases", data=data, headers={"referer": "http://evil.test/console/x"})
    assert r.status_code == 403
    assert not any(a["alias"] == "evil" for a in site.function("other")["aliases"])
    ok = no_origin.post("/console/functions/other/aliases", data=data, headers={"referer": site.url + "/console/functions"})
    assert ok.status_code == 303  # a same-origin Referer is enough when a browser sends no Origin
    assert client.post("/console/functions/other/aliases/evil/remove", data={"csrf": csrf}).status_code == 303


def test_a_revoked_keys_session_stops_at_once_and_sign_out_ends_a_session(site: Site) -> None:
    token = site.key("short-lived", scopes=["invoke"])
    client, csrf = sign_in(site.url, token)
    key_id = token.split("_")[1]
    assert site.api.delete(f"/v1/keys/{key_id}").status_code == 200
    r = client.get("/console/functions")
    assert r.status_code == 401 and f"API key {key_id} was revoked" in r.text and 'name="key"' in r.text
    assert 'fnhost_session=""' in r.headers["set-cookie"]

    client, csrf = sign_in(site.url, site.tokens["invoker"])
    stolen = dict(client.cookies)
    assert client.post("/console/signout", data={"csrf": csrf}).status_code == 303
    replay = httpx.Client(base_url=site.url, cookies=stolen)
    r = replay.get("/console/functions")
    assert r.status_code == 401 and "expired or you signed out" in r.text


def test_a_key_limited_to_one_function_sees_and_touches_nothing_else(site: Site) -> None:
    client, csrf = sign_in(site.url, site.tokens["limited"])
    hidden = ("other", "consumer", "nightly-other", "jobs", "team-fn")
    for path in ("/console/functions", "/console/invocations", "/console/tail", "/console/schedules",
                 "/console/triggers", "/console/invocations?function=mine", "/console/functions/mine"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert not any(name in _text(r.text) for name in hidden), path
    nosuch = client.get("/console/functions/nosuch")
    other = client.get("/console/functions/other")
    assert other.status_code == nosuch.status_code == 404
    assert _text(other.text).replace("other", "X") == _text(nosuch.text).replace("nosuch", "X")  # no tell
    for path in ("/console/invocations?function=other", "/console/tail?function=other",
                 "/console/tail.json?function=other", f"/console/invocations/{site.other_invocation}"):  # type: ignore[attr-defined]  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404 and "secret log line" not in r.text, path
    for path in ("/console/queues", "/console/queues/jobs-dlq", "/console/keys", "/console/audit"):
        r = client.get(path)
        assert r.status_code == 403 and "job 1" not in r.text and "jobs" not in _text(r.text).replace(path, ""), path
    before = site.function("other")
    forms = [
        ("/console/functions/other/aliases", {"alias": "live", "version": "1"}, 404),
        ("/console/functions/other/aliases/live/remove", {}, 404),
        ("/console/functions/other/invoke", {"payload": "x"}, 404),
        ("/console/queues/jobs-dlq/redrive", {}, 403),
        ("/console/keys", {"name": "mine-too", "scopes": "invoke"}, 403),
    ]
    for path, data, status in forms:
        r = client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == status, (path, r.text)
    r = client.post("/console/functions/deploy", data={"name": "other", "csrf": csrf},
                    files={"bundle": ("b.zip", pack_bundle('name = "other"\n', wat_guests.ECHO))})  # fmt: skip
    assert r.status_code == 404
    assert site.function("other") == before
    assert len(site.api.get("/v1/queues/jobs-dlq/messages").json()["messages"]) >= 1
    # its own function works
    r = client.post("/console/functions/mine/invoke", data={"payload": "hello mine", "csrf": csrf})
    assert r.status_code == 200 and "hello mine" in r.text


def test_another_namespaces_admin_learns_no_names_of_default(site: Site) -> None:
    client, csrf = sign_in(site.url, site.tokens["team-admin"])
    page = client.get("/console/functions")
    assert page.status_code == 200 and "team-fn" in page.text and "mine" not in _text(page.text)
    for path in ("/console/functions?ns=default", "/console/queues?ns=default", "/console/triggers?ns=default",
                 "/console/schedules?ns=default", "/console/audit", "/console/invocations?ns=default"):  # fmt: skip
        r = client.get(path)
        assert r.status_code in (200, 403), path
        assert not any(n in _text(r.text) for n in ("other", "consumer", "jobs", "nightly")), path
    other, nosuch = client.get("/console/functions/other?ns=default"), client.get("/console/functions/nosuch?ns=default")
    assert other.status_code == nosuch.status_code == 404
    assert _text(other.text).replace("other", "X") == _text(nosuch.text).replace("nosuch", "X")
    r = client.post("/console/queues/jobs-dlq/redrive?ns=default", data={"csrf": csrf})
    assert r.status_code == 403
    keys = client.get("/console/keys").text
    assert "team-admin" in keys and "limited" not in keys


def test_html_in_logs_key_names_messages_and_audit_details_is_escaped(site: Site) -> None:
    client, csrf = sign_in(site.url, site.admin)
    invoked = client.post("/console/functions/mine/invoke", data={"payload": HOSTILE, "csrf": csrf})
    assert invoked.status_code == 200
    invocation_id = re.search(r"/console/invocations/([0-9a-f]{32})", invoked.text).group(1)  # type: ignore[union-attr]
    site.key(HOSTILE, scopes=["invoke"])
    assert site.api.post("/v1/queues/inbox/messages", content=HOSTILE.encode()).status_code == 201
    bad_alias = client.post("/console/functions/mine/aliases", data={"alias": HOSTILE, "version": "1", "csrf": csrf})
    assert bad_alias.status_code == 400
    tail = client.get("/console/tail.json?function=mine").json()
    assert any(HOSTILE in i["logs"] for i in tail["invocations"])  # JSON: the script puts it in as text
    pages = [invoked, bad_alias, client.get(f"/console/invocations/{invocation_id}"), client.get("/console/keys"),
             client.get("/console/audit"), client.get("/console/queues/inbox")]  # fmt: skip
    for page in pages:
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, page.url
        assert "&lt;script&gt;" in page.text or "\\u003cscript\\u003e" in page.text, page.url


def test_an_oversized_upload_is_refused_clearly_before_it_is_read(site: Site) -> None:
    client, csrf = sign_in(site.url, site.admin)
    host, port = urlsplit(site.url).hostname, urlsplit(site.url).port
    cookie = f"fnhost_session={client.cookies['fnhost_session']}"
    with socket.create_connection((host, port), timeout=30) as s:  # declares 1 GB, sends none of it
        s.sendall(
            f"POST /console/functions/deploy HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {site.url}\r\n"
            f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            "Content-Length: 1000000000\r\n\r\n".encode()
        )
        received = b""
        while b"</html>" not in received and (chunk := s.recv(65536)):
            received += chunk
        answer = received.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413") and "text/html" in answer
    assert "the upload is 1000000000 bytes, over this server&#39;s limit of" in answer

    def chunks() -> Iterator[bytes]:  # no Content-Length: stopped while it streams
        yield b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + csrf.encode() + b"\r\n"
        yield b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbig\r\n"
        yield b'--x\r\nContent-Disposition: form-data; name="bundle"; filename="big.zip"\r\n\r\n'
        for _ in range(66):
            yield b"\0" * (1 << 20)

    r = client.post("/console/functions/deploy", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert r.status_code == 413 and "over this server" in r.text and "text/html" in r.headers["content-type"]
    assert site.api.get("/v1/functions/big").status_code == 404


def test_hostile_forms_get_a_4xx_page_not_a_500(site: Site) -> None:
    client, csrf = sign_in(site.url, site.admin)
    many = {"csrf": csrf, **{f"f{i}": "x" for i in range(500)}}
    r = client.post("/console/functions/other/aliases", data=many)
    assert r.status_code == 400 and "Too many fields" in r.text
    cases = [
        ("/console/functions/other/aliases", {"alias": "prod", "version": "99999999999999999999999"}, 400),
        ("/console/functions/other/aliases", {"alias": "prod", "version": "-1"}, 400),
        ("/console/functions/other/aliases", {"alias": "prod", "version": "7"}, 404),
        ("/console/functions/deploy", {"name": "x"}, 400),
        ("/console/keys", {"name": "x" * 500, "scopes": "invoke"}, 400),
        ("/console/keys", {"name": "k", "scopes": "root"}, 400),
        ("/console/queues/inbox/redrive", {}, 400),
        ("/console/queues/inbox/redrive", {"to": "inbox"}, 400),
    ]
    for path, data, status in cases:
        r = client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == status, (path, data, r.text)
        assert 'class="error"' in r.text
    bad_zip = client.post("/console/functions/deploy", data={"name": "x", "csrf": csrf}, files={"bundle": ("b.zip", b"PK junk")})  # fmt: skip
    assert bad_zip.status_code == 400 and "zip" in bad_zip.text
    for path in ("/console/functions?ns=Bad_NS", "/console/invocations?function=mine&outcome=nope",
                 "/console/audit?after=-1", "/console/functions/" + "x" * 5000):  # fmt: skip
        r = client.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)


def test_invocations_filter_by_outcome_on_the_page_and_in_the_api(site: Site) -> None:
    client, _ = sign_in(site.url, site.admin)
    failed = client.get("/console/invocations?function=consumer&outcome=guest_error")
    assert failed.status_code == 200 and "guest_error" in failed.text
    ok = client.get("/console/invocations?function=consumer&outcome=ok")
    assert "No invocations recorded" in ok.text
    api = site.api.get("/v1/functions/consumer/invocations?outcome=guest_error").json()["invocations"]
    assert api and {i["outcome"] for i in api} == {"guest_error"}
    assert site.api.get("/v1/functions/consumer/invocations?outcome=bogus").status_code == 400


def test_redrive_through_the_api_moves_dead_letters_back_and_is_admin_only(site: Site) -> None:
    limited = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.tokens['limited']}"})
    assert limited.post("/v1/queues/jobs-dlq/redrive").status_code == 403
    team = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.tokens['team-admin']}"})
    assert team.post("/v1/queues/jobs-dlq/redrive").status_code == 403
    r = team.post("/v1/namespaces/team-a/queues/jobs-dlq/redrive")  # its own namespace: no such dead letters
    assert r.status_code == 400 and "'team-a/jobs-dlq'" in r.json()["error"]["message"]
    r = site.api.post("/v1/queues/nothing-here/redrive")
    assert r.status_code == 400 and "no queue trigger dead-letters into queue 'nothing-here'" in r.json()["error"]["message"]
    r = site.api.post("/v1/queues/jobs-dlq/redrive", json={"limit": 0})
    assert r.status_code == 400
    site.deploy("consumer", CONSUMER, wat_guests.ECHO)  # fixed: the next delivery succeeds
    cli = fnhost("queues", "redrive", "jobs-dlq", "--json", env=_env(FNHOST_URL=site.url, FNHOST_TOKEN=site.admin))
    body = json.loads(cli.stdout)  # the CLI over Client.redrive_queue over the endpoint
    assert body["to"] == "jobs" and body["count"] >= 1 and body["remaining"] == 0
    audit = [e for e in site.audit() if e["action"] == "queue.redrive" and e["outcome"] == "ok"]
    assert audit and audit[-1]["detail"]["moved"] == body["count"]
    deadline = time.monotonic() + 30
    while not site.api.get("/v1/functions/consumer/invocations?outcome=ok").json()["invocations"]:
        assert time.monotonic() < deadline, "the redriven message was never delivered"
        time.sleep(0.1)
    site.deploy("consumer", CONSUMER, wat_guests.FAILS)


def test_a_browser_asking_for_slash_goes_to_the_console_api_clients_keep_json(site: Site) -> None:
    r = httpx.get(site.url + "/", headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    r = httpx.get(site.url + "/")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(site.url + "/console/", follow_redirects=True)
    assert r.status_code == 401 and 'name="key"' in r.text  # not signed in: the sign-in form


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sessions_expire_are_deleted_and_store_only_a_hash(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        db: Database | PostgresDatabase = Database(tmp_path / "fnhost.db")
    else:
        db = PostgresDatabase(request.getfixturevalue("postgres_server").new_database())
    try:
        sessions = SessionStore(db, ttl_s=60)
        a, b = sessions.create("key-a"), sessions.create("key-b")
        assert sessions.get(a).key_id == "key-a"  # type: ignore[union-attr]
        rows = db.db.execute("SELECT id_sha256, key_id FROM console_sessions").fetchall()
        assert len(rows) == 2 and all(a not in str(row) and b not in str(row) for row in rows)
        for bogus in (None, "", "x" * 43, a + "x", a[:-1], "' OR 1=1 --"):
            assert sessions.get(bogus) is None
        with db.transaction() as conn:  # a's time has come (on the database's clock)
            conn.execute("UPDATE console_sessions SET expires_at = expires_at - 61 WHERE key_id = 'key-a'")
        assert sessions.get(a) is None and sessions.get(b) is not None
        sessions.create("key-c")  # opening a session sweeps the expired ones
        assert [r[0] for r in db.db.execute("SELECT key_id FROM console_sessions ORDER BY key_id").fetchall()] == ["key-b", "key-c"]
        assert sessions.delete(b) and not sessions.delete(b) and sessions.get(b) is None
        c2 = sessions.create("key-c")
        assert sessions.delete_for_key("key-c") == 2 and sessions.get(c2) is None
        with pytest.raises(ValueError, match="session lifetime"):
            SessionStore(db, ttl_s=1)
    finally:
        db.close()


@contextmanager
def in_process(tmp_path: Path, origin: str, **options: Any) -> Iterator[tuple[Any, str]]:
    """The app in process (Starlette's TestClient) on a fresh host, for what a loopback http server
    cannot show: another scheme, another configuration. Yields the client and the admin token."""
    import warnings

    from conftest import COMPILED

    from fnhost import Host
    from fnhost.api import create_app
    from fnhost.control import ApiKeys

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    host = Host(tmp_path / "data", cache_dir=COMPILED)
    try:
        admin = host.open_store(ApiKeys).ensure_bootstrap_admin(tmp_path / "data").read_text().strip()  # type: ignore[union-attr]
        host.deploy("mine", wat_guests.ECHO, 'name = "mine"\n')
        with TestClient(create_app(host, **options), base_url=origin) as client:
            yield client, admin
    finally:
        host.close()


def test_a_read_only_server_shows_the_console_and_refuses_every_change(tmp_path: Path) -> None:
    origin = "http://edge.test"
    with in_process(tmp_path, origin, read_only=True) as (client, admin):
        form = client.get("/console/signin")
        r = client.post("/console/signin", data={"key": admin, "csrf": csrf_of(form.text)}, headers={"origin": origin})
        assert r.status_code == 200  # TestClient follows the redirect to the functions page
        page = client.get("/console/functions/mine")
        assert page.status_code == 200 and "This server is read-only" in page.text
        assert "Roll back" not in page.text and "Point alias" not in page.text and "Unpin" not in page.text
        data = {"alias": "prod", "version": "1", "csrf": csrf_of(page.text)}
        r = client.post("/console/functions/mine/aliases", data=data, headers={"origin": origin})
        assert r.status_code == 405 and "read-only" in r.text
        assert "prod" not in client.get("/console/functions/mine").text


def test_over_https_the_session_cookie_is_also_secure(tmp_path: Path) -> None:
    origin = "https://console.test"
    with in_process(tmp_path, origin) as (client, admin):
        form = client.get("/console/signin")
        assert "secure" in form.headers["set-cookie"].lower()
        r = client.post("/console/signin", data={"key": admin, "csrf": csrf_of(form.text)},
                        headers={"origin": origin}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("fnhost_session="))
        assert {"secure", "httponly", "samesite=strict"} <= {p.strip().lower() for p in session.split(";")}
        refused = client.post("/console/signin", data={"key": admin, "csrf": "x"},
                              headers={"origin": "http://console.test"})  # fmt: skip
        assert refused.status_code == 403  # http is another origin than https


def test_usage_charts_show_only_the_functions_a_key_may_read(site: Site) -> None:
    for _ in range(3):
        assert site.api.post("/v1/functions/mine/invoke", content=b"counted").status_code == 200
    assert site.api.post("/v1/functions/other/invoke", content=b"counted too").status_code == 200
    admin, _ = sign_in(site.url, site.admin)
    page = admin.get("/console/usage")
    assert page.status_code == 200, page.text
    charts = re.findall(r'<section class="usage-chart">\s*<h2>([^<]+) <small>', page.text)
    assert {"mine", "other"} <= {c.strip() for c in charts}
    assert re.search(r'<rect class="calls" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[1-9][\d.]*">', page.text)
    assert re.search(r"<title>[^<]* UTC: [1-9]\d* invocations, \d+ errors</title>", page.text)
    assert admin.get("/console/usage?period=day").status_code == 200
    bad = admin.get("/console/usage?period=week")
    assert bad.status_code == 400 and "period: must be one of hour, day" in bad.text
    limited, _ = sign_in(site.url, site.tokens["limited"])
    seen = _text(limited.get("/console/usage").text)
    assert "mine" in seen and "other" not in seen and "consumer" not in seen
    team, _ = sign_in(site.url, site.tokens["team-admin"])
    for path in ("/console/usage", "/console/usage?ns=default"):
        r = team.get(path)
        assert r.status_code in (200, 403) and "mine" not in _text(r.text) and "other" not in _text(r.text), path
