"""End to end: `python -m fnhost serve` (real Hypercorn) in a subprocess, driven by the CLI and httpx."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import CACHE_DIR, COMPILED

from fnhost.control import pack_bundle

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HELLO_SRC = ROOT / "guests" / "rust" / "hello"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHOST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "host"), env.get("PYTHONPATH")]))
    env["FNHOST_CACHE_DIR"] = str(CACHE_DIR)
    env.update(extra)
    return env


def fnhost(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "fnhost", *args], env=env or _env(), capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"fnhost {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    data_dir: Path,
    *args: str,
    cache_dir: Path = COMPILED,
    env: dict[str, str] | None = None,
    ready: str = "/healthz",
) -> Iterator[str]:
    """A running `fnhost serve` on a free loopback port, answering 200 on `ready`; always stopped
    (SIGTERM, then SIGKILL)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(data_dir.parent / f"serve-{port}.log", "w+")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fnhost",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--cache-dir",
            str(cache_dir),
            "--workers",
            "2",
            *args,
        ],
        env=env or _env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}{ready}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"fnhost serve did not start (exit {proc.returncode}):\n{log.read()}")
            time.sleep(0.1)
        yield url
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log.seek(0)
        assert "fnhost stopped" in log.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_serve_deploy_invoke_over_http(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with server(data_dir) as url:
        token = (data_dir / "admin.key").read_text().strip()
        env = _env(FNHOST_URL=url, FNHOST_TOKEN=token)

        deployed = fnhost("deploy", str(HELLO_SRC), env=env)
        assert "deployed hello version 1" in deployed.stdout
        assert "uploading hello" in deployed.stderr
        assert "unchanged" in fnhost("deploy", str(HELLO_SRC), env=env).stdout

        headers = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{url}/v1/functions/hello/invoke", content=b'{"name": "e2e"}', headers=headers)
        assert (r.status_code, r.content) == (200, b'{"message":"Hello, e2e!"}')
        assert r.headers["x-fnhost-outcome"] == "ok" and r.headers["x-request-id"]
        r = httpx.get(f"{url}/fn/hello/hello?name=web")
        assert r.json() == {"message": "Hello, web!"}

        assert fnhost("invoke", "hello", "--data", '{"name": "cli"}', env=env).stdout == '{"message":"Hello, cli!"}'
        assert "hello" in fnhost("list", env=env).stdout
        logs = fnhost("logs", "hello", env=env).stdout
        assert logs.count("REPORT RequestId:") == 3
        fnhost("alias", "set", "hello", "prod", "1", env=env)
        fnhost("secrets", "set", "db-password", "s3cret", env=env)
        assert fnhost("secrets", "list", env=env).stdout.split() == ["db-password"]
        new_token = fnhost("keys", "create", "--name", "ci", "--scope", "invoke", env=env).stdout.strip()
        assert new_token.startswith("fnh_")
        assert "audit log intact" in fnhost("audit", "verify", env=env).stdout
        fnhost("secrets", "rm", "db-password", env=env)
        assert fnhost("secrets", "list", env=env).stdout == ""
        key_id = new_token.split("_")[1]
        assert key_id in fnhost("keys", "list", env=env).stdout
        assert f"key {key_id} revoked" in fnhost("keys", "revoke", key_id, env=env).stdout
        assert (
            "deployed hello-copy version 1" in fnhost("deploy", str(HELLO_SRC), "--name", "hello-copy", env=env).stdout
        )
        assert httpx.get(f"{url}/fn/hello-copy/").json()["function"] == "hello-copy"

        failed = fnhost("invoke", "nope", env=env, check=False)
        assert failed.returncode == 1 and "not_found: function 'nope' does not exist" in failed.stderr
        invoker = fnhost("keys", "create", "--name", "web", "--scope", "invoke", env=env).stdout.strip()
        denied = fnhost("deploy", str(HELLO_SRC), env=_env(FNHOST_URL=url, FNHOST_TOKEN=invoker), check=False)
        assert denied.returncode == 1 and "forbidden" in denied.stderr

        # tenancy (docs/security.md): a namespace admin, its deploy key that may grant kv:hello-* only, a share
        team = fnhost("keys", "create", "--name", "a", "--scope", "admin", "-n", "team-a", env=env).stdout.strip()
        team_env = _env(FNHOST_URL=url, FNHOST_TOKEN=team, FNHOST_NAMESPACE="team-a")
        assert "deployed hello version 1" in fnhost("deploy", str(HELLO_SRC), env=team_env).stdout
        assert httpx.get(f"{url}/ns/team-a/fn/hello/hello?name=a").json() == {"message": "Hello, a!"}
        ci_args = ("--scope", "deploy", "--function", "hello", "--may-grant", "kv:hello-*")
        ci = fnhost("keys", "create", "--name", "ci", *ci_args, env=team_env).stdout.strip()
        assert "team-a" in fnhost("keys", "list", env=team_env).stdout
        wasm = tmp_path / "hello.wasm"
        fnhost("build", str(HELLO_SRC), "-o", str(wasm), env=env)
        for grants, allowed in (('kv = ["hello-cache"]', True), ('secrets = ["db-password"]', False)):
            bundle = tmp_path / "granted.zip"
            bundle.write_bytes(pack_bundle(f'name = "hello"\n\n[grants]\n{grants}\n', wasm.read_bytes()))
            ci_env = _env(FNHOST_URL=url, FNHOST_TOKEN=ci, FNHOST_NAMESPACE="team-a")
            result = fnhost("deploy", str(bundle), env=ci_env, check=False)
            assert (result.returncode == 0) == allowed, result.stderr
        assert "may not grant secret 'db-password'" in result.stderr and "'secret:db-password'" in result.stderr
        shared = fnhost("shares", "create", "kv", "hello-cache", "--with", "team-b", env=team_env).stdout
        assert "shared kv team-a/hello-cache with team-b" in shared
        share_id = shared.split("(share ")[1].rstrip(")\n")
        assert share_id in fnhost("shares", "list", env=team_env).stdout
        assert f"share {share_id} revoked" in fnhost("shares", "revoke", share_id, env=team_env).stdout
        assert fnhost("list", env=env).stdout.count("hello") == 2  # default: hello and hello-copy only

    stopped = fnhost("list", env=_env(FNHOST_URL=url, FNHOST_TOKEN=token), check=False)
    assert stopped.returncode == 1 and "cannot reach fnhost" in stopped.stderr


def test_read_only_edge_serves_signed_bundles(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    fnhost("keys", "gen-signing", "-o", str(tmp_path / "release.key"))
    fnhost("build", str(HELLO_SRC), "-o", str(bundles / "hello.zip"), "--sign", str(tmp_path / "release.key"))

    with server(
        tmp_path / "edge", "--read-only", "--bundles", str(bundles), "--trusted-key", str(tmp_path / "release.key.pub")
    ) as url:
        assert httpx.get(f"{url}/fn/hello/hello?name=edge").json() == {"message": "Hello, edge!"}
        token = (tmp_path / "edge" / "admin.key").read_text().strip()
        r = httpx.put(f"{url}/v1/functions/hello", content=b"x", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 405 and r.json()["error"]["code"] == "read_only"

    # A bundle not signed by the trusted key stops the start, naming the file.
    fnhost("keys", "gen-signing", "-o", str(tmp_path / "other.key"))
    start = subprocess.run(
        [
            sys.executable,
            "-m",
            "fnhost",
            "serve",
            "--port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path / "e2"),
            "--cache-dir",
            str(COMPILED),
            "--read-only",
            "--bundles",
            str(bundles),
            "--trusted-key",
            str(tmp_path / "other.key.pub"),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert start.returncode == 1
    assert "hello.zip: signed by an untrusted key" in start.stderr


def _hello_version(tmp_path: Path, timeout_ms: int) -> Path:
    """A copy of the Rust hello whose manifest differs (so a deploy makes a new version)."""
    src = tmp_path / f"hello-{timeout_ms}"
    shutil.copytree(HELLO_SRC, src, ignore=shutil.ignore_patterns("target"))
    manifest = src / "fnhost.toml"
    manifest.write_text(manifest.read_text().replace("timeout_ms = 5000", f"timeout_ms = {timeout_ms}"))
    return src


def test_versions_rollback_unpin_alias_and_delete_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with server(data_dir) as url:
        env = _env(FNHOST_URL=url, FNHOST_TOKEN=(data_dir / "admin.key").read_text().strip())
        for timeout_ms in (5000, 4000):
            fnhost("deploy", str(_hello_version(tmp_path, timeout_ms)), env=env)
        listed = fnhost("versions", "hello", env=env).stdout
        assert listed.splitlines()[0].split() == ["VERSION", "SHA256", "CREATED", "BY", "ALIASES"]
        assert [line.split()[0] for line in listed.splitlines()[1:]] == ["1", "2"]
        assert "hello:live -> version 1 (pinned" in fnhost("rollback", "hello", env=env).stdout
        assert httpx.get(f"{url}/fn/hello/").json()["version"] == "1"
        third = fnhost("deploy", str(_hello_version(tmp_path, 3000)), env=env)
        assert "deployed hello version 3" in third.stdout
        assert "live is pinned to version 1" in third.stderr and "fnhost unpin hello" in third.stderr
        assert "follows the newest version (3)" in fnhost("unpin", "hello", env=env).stdout
        assert httpx.get(f"{url}/fn/hello/").json()["version"] == "3"
        fnhost("alias", "set", "hello", "prod", "2", env=env)
        aliases = fnhost("alias", "list", "hello", env=env).stdout
        assert "prod" in aliases and "no (follows newest)" in aliases
        assert "hello:prod removed" in fnhost("alias", "rm", "hello", "prod", env=env).stdout
        missing = fnhost("alias", "rm", "hello", "prod", env=env, check=False)
        assert missing.returncode == 1 and "has no alias 'prod'" in missing.stderr
        unknown = fnhost("rollback", "nosuch", env=env, check=False)
        assert unknown.returncode == 1 and "function 'nosuch' does not exist" in unknown.stderr
        for command in (("logs", "nosuch"), ("versions", "nosuch"), ("unpin", "nosuch"), ("delete", "nosuch"),
                        ("alias", "list", "nosuch"), ("alias", "set", "nosuch", "prod", "1"),
                        ("alias", "rm", "nosuch", "prod"), ("invoke", "nosuch"), ("invoke", "nosuch", "--async"),
                        ("rollback", "nosuch", "1"), ("logs", "nosuch", "--json")):  # fmt: skip
            failed = fnhost(*command, env=env, check=False)
            assert failed.returncode == 1 and "function 'nosuch' does not exist" in failed.stderr, command
        as_json = json.loads(fnhost("versions", "hello", "--json", env=env).stdout)
        assert [v["version"] for v in as_json["versions"]] == [1, 2, 3]
        assert json.loads(fnhost("list", "--json", env=env).stdout)["functions"][0]["name"] == "hello"
        assert json.loads(fnhost("alias", "list", "hello", "--json", env=env).stdout)["aliases"][0]["alias"] == "live"
        assert json.loads(fnhost("keys", "list", "--json", env=env).stdout)["keys"][0]["name"] == "bootstrap-admin"
        assert "deleted hello" in fnhost("delete", "hello", env=env).stdout
        assert fnhost("list", env=env).stdout.strip() == "NAME  LATEST  ALIASES"
    assert fnhost("--version").stdout.startswith("fnhost ")


def test_logs_follow_streams_invocations_until_the_server_stops(tmp_path: Path) -> None:
    import queue
    import threading

    import wat_guests

    data_dir = tmp_path / "data"
    bundle = tmp_path / "echo.zip"
    bundle.write_bytes(pack_bundle('name = "echo"\n', wat_guests.ECHO))
    with server(data_dir, "--graceful-timeout", "5") as url:
        env = _env(FNHOST_URL=url, FNHOST_TOKEN=(data_dir / "admin.key").read_text().strip())
        fnhost("deploy", str(bundle), env=env)
        auth = {"Authorization": f"Bearer {env['FNHOST_TOKEN']}"}

        def invoke() -> str:  # the echo guest's output is binary: not for a text pipe
            r = httpx.post(f"{url}/v1/functions/echo/invoke", content=b"x", headers=auth)
            assert r.status_code == 200
            return r.headers["x-fnhost-invocation-id"]

        invoke()
        follower = subprocess.Popen([sys.executable, "-m", "fnhost", "logs", "echo", "--follow", "--limit", "1"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout or []], daemon=True).start()

        def starts(n: int) -> list[str]:
            seen: list[str] = []
            while len(seen) < n:
                line = lines.get(timeout=30)
                if line.startswith("START"):
                    seen.append(line.split()[2])  # START RequestId: ID Version: ...
            return seen

        [old] = starts(1)  # the newest one first, as `logs --limit 1` prints it
        ran = [invoke() for _ in range(2)]
        assert starts(2) == ran and old not in ran
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 15  # leaving `server` stopped it: the open stream did not hold it
    assert follower.wait(timeout=15) == 0
    assert "is stopping; stopped following echo" in (follower.stderr.read() if follower.stderr else "")
    with server(data_dir) as url:
        env = _env(FNHOST_URL=url, FNHOST_TOKEN=(data_dir / "admin.key").read_text().strip())
        unknown = fnhost("logs", "nosuch", "--follow", env=env, check=False)
        assert unknown.returncode == 1 and "function 'nosuch' does not exist" in unknown.stderr
        as_json = subprocess.Popen([sys.executable, "-m", "fnhost", "logs", "echo", "-f", "--json", "--limit", "1"],
                                   env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert as_json.stdout is not None
        assert json.loads(as_json.stdout.readline())["function"] == "echo"  # one record per line
        as_json.send_signal(signal.SIGINT)
        assert as_json.wait(timeout=15) == 130
