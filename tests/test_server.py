"""`fnhost.Server` embedded without the CLI, served by real Hypercorn, driven by `fnhost.Client`:
the lifespan runs the triggers and flushes the audit at shutdown, one deploy pipeline audits
every deploy, `logs --follow`'s stream, and function URLs for aliases and versions — with the
callers an attacker would be (no key, a key for another function, another namespace's admin).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import wat_guests as g
from conftest import COMPILED, wait_for

from fnhost import ApiError, Client, Server, ServerConfig
from fnhost.control import pack_bundle
from fnhost.errors import InvalidRequest, SignatureError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    """A `Server` served by Hypercorn on a thread of this process, as an embedder would run it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.config.port}"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.served: BaseException | None = None

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self.server.serve(shutdown_trigger=self._stop.wait))
        except BaseException as e:  # reported by stop()
            self.served = e

    def start(self) -> Running:
        self._thread.start()
        wait_for(self._ready, what="the server to answer /readyz")
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, timeout_s: float = 30.0) -> float:
        """Stop as a signal would; how long it took."""
        started = time.monotonic()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the server did not stop"
        assert self.served is None, self.served
        return time.monotonic() - started


@contextmanager
def running(data_dir: Path, **config: Any) -> Iterator[tuple[Running, str]]:
    options = {"workers": 2, "graceful_timeout_s": 5.0, **config}
    with Server(ServerConfig(data_dir=data_dir, cache_dir=COMPILED, port=_free_port(), **options)) as server:
        admin_file = server.ensure_bootstrap_admin()
        assert admin_file is not None
        r = Running(server).start()
        try:
            yield r, admin_file.read_text().strip()
        finally:
            if r._thread.is_alive():
                r.stop()


def bundle(manifest: str, wasm: bytes = g.ECHO) -> bytes:
    return pack_bundle(manifest, wasm)


# one server for the tests that need no fresh one ------------------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    with running(tmp_path_factory.mktemp("shared") / "data", max_followers=3) as r:
        yield r


@pytest.fixture(scope="module")
def admin(shared: tuple[Running, str]) -> Iterator[Client]:
    running_server, token = shared
    with Client(running_server.url, token) as client:
        yield client


# the lifespan -------------------------------------------------------------------------------------
def test_an_embedded_server_runs_queue_triggers_and_stops_them(tmp_path: Path) -> None:
    with running(tmp_path / "data") as (r, token), Client(r.url, token) as api:
        r.server.deploy_bundle(bundle('name = "worker"\n[[triggers.queue]]\nqueue = "jobs"\n'))
        assert r.server.triggers.started
        api.send_message("jobs", b"work")
        [record] = wait_for(lambda: api.invocations("worker"), what="the queue trigger to invoke worker")
        assert record["trigger"] == "queue" and record["outcome"] == "ok"
        wait_for(lambda: not api.queues(), what="the message to be acked")
        took = r.stop()
    assert not r.server.triggers.started and r.server.stopped_clean
    assert took < 5.0 + 2  # within the graceful timeout and its margin
    names = {t.name for t in threading.enumerate()}
    assert not any(n.startswith(("fnhost-async", "fnhost-scheduler", "fnhost-queue", "fnhost-audit")) for n in names)


def test_failed_authentication_summaries_are_written_at_shutdown(tmp_path: Path) -> None:
    """Repeated 401s from one source are counted, not written one row each; the summary of the
    interval still open when the server stops used to be lost."""
    with running(tmp_path / "data") as (r, _):
        for _ in range(5):
            assert httpx.get(f"{r.url}/v1/functions", headers={"Authorization": "Bearer nope"}).status_code == 401
        r.stop()
        entries = [e for e in r.server.audit_log.list(limit=100) if e.action.startswith("auth.denied")]
    assert [e.action for e in entries] == ["auth.denied", "auth.denied.summary"]
    assert entries[1].detail is not None and entries[1].detail["count"] == 4


# one deploy pipeline ------------------------------------------------------------------------------
def test_every_deploy_goes_through_one_audited_pipeline(shared: tuple[Running, str], admin: Client) -> None:
    server = shared[0].server
    deployed = server.deploy_bundle(bundle('name = "piped"\n'), created_by="embedder")
    assert deployed.version.created and deployed.signed_by is None
    assert admin.deploy("piped", bundle('name = "piped"\n[env]\nV = "2"\n'))["version"] == 2
    with pytest.raises(InvalidRequest, match="the URL names function 'other'"):
        server.deploy_bundle(bundle('name = "piped"\n'), name="other")
    with pytest.raises(ApiError) as refused:
        admin.deploy("piped", b"PK not a zip")
    assert (refused.value.status, refused.value.code) == (400, "invalid_bundle")
    audit = [e for e in server.audit_log.list(limit=1000) if e.action == "function.deploy"]
    mine = [(e.target, e.outcome, e.actor_key_id is None) for e in audit if e.target in ("piped", "other")]
    assert mine == [("piped", "ok", True), ("piped", "ok", False), ("other", "invalid_request", True),
                    ("piped", "invalid_bundle", False)]  # fmt: skip


def test_a_server_that_trusts_keys_refuses_unsigned_bundles_from_embedders_too(tmp_path: Path) -> None:
    from fnhost.control import generate_signing_key

    _, public = generate_signing_key()
    config = ServerConfig(data_dir=tmp_path / "d", cache_dir=COMPILED, trusted_keys=(public,))
    with Server(config) as server, pytest.raises(SignatureError, match="bundle is not signed"):
        server.deploy_bundle(bundle('name = "unsigned"\n'))


# logs --follow ------------------------------------------------------------------------------------
class Follower:
    """`Client.follow_invocations` on a thread, collecting what it yields."""

    def __init__(self, client: Client, name: str, **kwargs: Any) -> None:
        self.records: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, name, kwargs), daemon=True)
        self._thread.start()

    def _run(self, client: Client, name: str, kwargs: dict[str, Any]) -> None:
        try:
            for record in client.follow_invocations(name, **kwargs):
                self.records.append(record)
        except BaseException as e:
            self.error = e
        finally:
            self.ended.set()


def test_follow_streams_new_invocations_across_bounded_streams(shared: tuple[Running, str], admin: Client) -> None:
    admin.deploy("followed", bundle('name = "followed"\n'))
    before = admin.invoke("followed", b"before").invocation_id
    with Client(admin.url, shared[1]) as own:  # the follower's own connection
        follower = Follower(own, "followed", stream_s=1.0)  # several streams, each continued from its end
        time.sleep(0.5)
        ids = [admin.invoke("followed", f"n{i}".encode()).invocation_id for i in range(3)]
        time.sleep(1.5)
        ids.append(admin.invoke("followed", b"after a reconnect").invocation_id)
        wait_for(lambda: len(follower.records) >= 4, what="four followed invocations")
        time.sleep(1.5)  # and nothing more, though streams overlap
        assert [r["id"] for r in follower.records] == ids and before not in ids
        assert follower.records[0]["logs"] == "" and follower.records[0]["outcome"] == "ok"
        assert not follower.ended.is_set()


def test_follow_since_an_invocation_and_its_errors(shared: tuple[Running, str], admin: Client) -> None:
    admin.deploy("since", bundle('name = "since"\n'))
    first, second = (admin.invoke("since", b"x").invocation_id for _ in range(2))
    records = admin.follow_invocations("since", since=first, stream_s=0.5)
    assert next(records)["id"] == second
    records.close()
    with pytest.raises(ApiError) as missing:
        next(admin.follow_invocations("since", since="no-such-id"))
    assert missing.value.status == 404 and "has no invocation 'no-such-id'" in missing.value.message
    with pytest.raises(ApiError) as unknown:
        next(admin.follow_invocations("nosuch"))
    assert unknown.value.status == 404 and "function 'nosuch' does not exist" in unknown.value.message
    for bad in ({"max_s": "0"}, {"max_s": "nan"}, {"max_s": "1e9"}, {"after": "-1"}, {"since": first, "after": "1"}):
        r = httpx.get(f"{admin.url}/v1/functions/since/invocations/follow", params=bad,
                      headers={"Authorization": f"Bearer {shared[1]}"})  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", bad


def test_follow_is_refused_to_keys_that_may_not_read_and_ends_when_revoked(
    shared: tuple[Running, str], admin: Client
) -> None:
    admin.deploy("private-logs", bundle('name = "private-logs"\n'))
    other = admin.create_key("other", ["invoke"], functions=["followed"])["token"]
    with Client(admin.url, other) as limited:
        with pytest.raises(ApiError) as hidden:
            next(limited.follow_invocations("private-logs"))
        assert hidden.value.status == 404  # as if it did not exist
    with Client(admin.url) as anonymous, pytest.raises(ApiError) as no_key:
        next(anonymous.follow_invocations("private-logs"))
    assert no_key.value.status == 401
    team = admin.create_key("team-b", ["admin"], namespace="team-b")["token"]
    with Client(admin.url, team, namespace="team-b") as elsewhere, pytest.raises(ApiError) as foreign:
        next(elsewhere.follow_invocations("private-logs"))  # its own namespace: nothing there
    assert foreign.value.status == 404
    reader = admin.create_key("reader", ["invoke"], functions=["private-logs"])
    with Client(admin.url, reader["token"]) as client:
        follower = Follower(client, "private-logs")
        time.sleep(0.5)
        admin.revoke_key(reader["key_id"])
        assert follower.ended.wait(15), "a revoked key's stream did not end"
    assert isinstance(follower.error, ApiError) and follower.error.status == 403


def test_followers_are_bounded_and_end_when_the_server_stops(tmp_path: Path) -> None:
    with running(tmp_path / "data", max_followers=2) as (r, token), Client(r.url, token) as api:
        api.deploy("busy", bundle('name = "busy"\n'))
        clients = [Client(r.url, token) for _ in range(2)]
        followers = [Follower(c, "busy") for c in clients]
        wait_for(lambda: r.server.app.state.fnhost.followers.open == 2, what="two open streams")
        with pytest.raises(ApiError) as busy:
            next(api.follow_invocations("busy"))
        assert busy.value.status == 503 and "log followers are connected" in busy.value.message
        took = r.stop()
        assert all(f.ended.wait(5) for f in followers)
        assert all(f.error is None for f in followers)  # a clean end: the server said it was stopping
        assert took < 4.0, f"open streams held the stop for {took:.1f} s"
        for c in clients:
            c.close()


# function URLs for aliases and versions -----------------------------------------------------------
@pytest.fixture(scope="module")
def site(admin: Client) -> Client:
    """`site`: version 1 public (200), 2 public (201, live), alias beta -> 1; `vault`: private, alias prod -> 1."""
    admin.deploy("site", bundle('name = "site"\n[http]\npublic = true\n', g.http_status(200)))
    admin.deploy("site", bundle('name = "site"\n[http]\npublic = true\n', g.http_status(201)))
    admin.set_alias("site", "beta", 1)
    admin.deploy("vault", bundle('name = "vault"\n', g.http_status(200)))
    admin.set_alias("vault", "prod", 1)
    return admin


def test_function_urls_serve_any_alias_or_version(shared: tuple[Running, str], site: Client) -> None:
    url = shared[0].url
    for path, status, version in (("site", 201, "2"), ("site@live", 201, "2"), ("site@beta", 200, "1"),
                                  ("site@1", 200, "1"), ("site@2", 201, "2")):  # fmt: skip
        r = httpx.get(f"{url}/fn/{path}/any/path?q=1")
        assert (r.status_code, r.headers["x-fnhost-version"]) == (status, version), path
    assert httpx.get(f"{url}/fn/site@beta").status_code == 200  # no path after it


def test_function_urls_of_aliases_keep_private_functions_private(shared: tuple[Running, str], site: Client) -> None:
    url, token = shared[0].url, shared[1]
    for path in ("vault@prod", "vault@1", "vault@live", "vault@nosuch", "nosuch@prod"):
        r = httpx.get(f"{url}/fn/{path}/")
        assert r.status_code == 401, path  # no key: no answer on what exists
    limited = site.create_key("site-only", ["invoke"], functions=["site"])["token"]
    for path in ("vault@prod", "vault@1", "vault@nosuch"):
        r = httpx.get(f"{url}/fn/{path}/", headers={"Authorization": f"Bearer {limited}"})
        assert r.status_code in (403, 404) and "x-fnhost-version" not in r.headers, path
    r = httpx.get(f"{url}/fn/vault@prod/", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.headers["x-fnhost-version"]) == (200, "1")
    r = httpx.get(f"{url}/fn/site@nosuch/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and "no alias 'nosuch'" in r.json()["error"]["message"]


def test_an_alias_cannot_reopen_a_function_made_private(shared: tuple[Running, str], admin: Client) -> None:
    url = shared[0].url
    admin.deploy("closing", bundle('name = "closing"\n[http]\npublic = true\n', g.http_status(200)))
    admin.set_alias("closing", "old", 1)
    assert httpx.get(f"{url}/fn/closing@old/").status_code == 200
    admin.deploy("closing", bundle('name = "closing"\n', g.http_status(201)))  # version 2, private, live
    for path in ("closing", "closing@old", "closing@1"):
        assert httpx.get(f"{url}/fn/{path}/").status_code == 401, path


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("site@", 400, "name an alias or a version after '@'"),
        ("site@@beta", 400, "must be a version number or an alias"),
        ("site@Beta", 400, "must be a version number or an alias"),
        ("site@beta@1", 400, "must be a version number or an alias"),
        ("site@0", 400, "version numbers are 1.."),
        ("site@99999999999999999999999", 400, "version numbers are 1.."),
        ("site%40beta", 200, ""),  # the same URL, percent-encoded
        ("site\uff20beta", 401, ""),  # a fullwidth at sign: just a name that does not exist
        ("sit\u0435@beta", 401, ""),  # a Cyrillic e: likewise
    ],
)
def test_look_alike_function_urls(
    shared: tuple[Running, str], site: Client, path: str, status: int, message: str
) -> None:
    r = httpx.get(f"{shared[0].url}/fn/{path}/")
    assert r.status_code == status, r.text
    if message:
        assert message in r.json()["error"]["message"]


def test_namespaced_function_urls_take_aliases_too(shared: tuple[Running, str], admin: Client) -> None:
    team = admin.create_key("team-c", ["admin"], namespace="team-c")["token"]
    with Client(admin.url, team, namespace="team-c") as c:
        c.deploy("page", bundle('name = "page"\n[http]\npublic = true\n', g.http_status(200)))
        c.deploy("page", bundle('name = "page"\n[http]\npublic = true\n', g.http_status(201)))
        c.set_alias("page", "stable", 1)
    url = shared[0].url
    assert httpx.get(f"{url}/ns/team-c/fn/page@stable/").status_code == 200
    assert httpx.get(f"{url}/ns/team-c/fn/page/").status_code == 201
    assert httpx.get(f"{url}/fn/page@stable/").status_code == 401  # not in the default namespace


def test_completion_offers_the_servers_function_names(shared: tuple[Running, str], admin: Client) -> None:
    """What `fnhost logs compl<TAB>` asks the server."""
    from test_cli import bash_complete as complete

    admin.deploy("completed", bundle('name = "completed"\n'))
    admin.deploy("other-fn", bundle('name = "other-fn"\n'))
    here = {"FNHOST_URL": shared[0].url, "FNHOST_TOKEN": shared[1]}
    assert complete("fnhost logs compl", **here) == ["completed"]
    assert "other-fn" in complete("fnhost alias list ot", **here)
    assert complete("fnhost logs compl", FNHOST_URL=shared[0].url) == []  # no key: nothing, and no error
    assert complete("fnhost logs compl", FNHOST_URL="http://127.0.0.1:9") == []  # no server there
