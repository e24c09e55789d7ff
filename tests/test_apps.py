"""App files (fnhost.app.toml), `up` in two phases (upload with live=false, then one release) and the
release API, against the real app and a real `fnhost serve`."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CACHE_DIR, COMPILED
from test_api import Api, start_api
from test_e2e import _env, _free_port, fnhost, server

from fnhost import Client
from fnhost.appfile import APP_FILE, SECRETS_FILE, AppFileError, app_of_guests, load_app
from fnhost.build import build_guest
from fnhost.control import pack_bundle
from fnhost.up import UpError, up

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "guests" / "rust" / "hello"
SHOP = ROOT / "guests" / "apps" / "shop"


def write_app(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fnhost.app.toml"
    path.write_text(text)
    return path


def hello_app(tmp_path: Path, *names: str, extra: str = "") -> Path:
    """An app of several functions built from guests/rust/hello (each deployed under its own name)."""
    body = 'name = "hellos"\n' + "".join(f'[functions.{n}]\nsource = "{HELLO}"\n' for n in names)
    return write_app(tmp_path, body + extra)


# the app file -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('name = "x"\n', "functions: the app declares no functions"),
        ('name = "x"\nfunction = {}\n', "function: unknown key; the keys here are: name, namespace, functions, stage"),
        ('name = "X Y"\n[functions.a]\nsource = "."\n', "name: must be the app's name"),
        ('name = "x"\n[functions.Orders]\nsource = "."\n', "functions.Orders: 'Orders' is not a function name"),
        ('name = "x"\n[functions.a]\n', "functions.a: needs exactly one of source and bundle"),
        ('name = "x"\n[functions.a]\nsource = "nowhere"\n', "functions.a.source: 'nowhere' is not a directory"),
        ('name = "x"\n[functions.a]\nsource = "."\n', "functions.a.source: '.' has no fnhost.toml"),
        ('name = "x"\n[functions.a]\nbundle = "a.zip"\n', "functions.a.bundle: 'a.zip' is not a file"),
        ('name = "x"\nnamespace = "Team A"\n[functions.a]\nsource = "."\n', "namespace: 'Team A' is not a namespace"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\naliases = ["1"]\n', "functions.a.aliases: must be a list of alias"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\naliases = []\n', "functions.a.aliases: must be a list"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\naliases = ["live", "live"]\n', "names an alias twice"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\nmanifest = {{ name = "b" }}\n', "a function's name is its [functions.NAME] key"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\nmanifest = {{ limits = {{ memory_mb = 0 }} }}\n',
         "functions.a.manifest: the manifest it makes is invalid: limits.memory_mb: must be 1..4096, got 0"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\n[stage.prod.functions.b]\naliases = ["live"]\n',
         "stage.prod.functions.b: the app has no function 'b' (its functions: a)"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\n[stage.prod.functions.a]\nsource = "x"\n',
         "stage.prod.functions.a.source: unknown key; the keys here are: aliases, manifest"),
        # a typo in a stage is found whichever stage is deployed
        ('name = "x"\n[functions.a]\nsource = "{hello}"\n[stage.prod.functions.a.manifest.triggers]\nschedule = [{{ name = "t", cron = "61 * * * *" }}]\n',
         "stage.prod.functions.a.manifest: the manifest it makes is invalid: triggers.schedule[0].cron"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\n[stage."Prod"]\n', "stage.Prod: 'Prod' is not a stage name"),
        ('name = "x"\n[functions.a]\nsource = "{hello}"\nmanifest = {{ limits = {{ a = {{ b = {{ c = 1 }} }} }} }}\n',
         "limits.a: unknown limit"),
        ("name = [\n", "not valid TOML"),
    ],
)
def test_bad_app_files_name_the_file_the_key_and_the_fix(tmp_path: Path, text: str, words: str) -> None:
    path = write_app(tmp_path, text.replace("{hello}", str(HELLO)).replace("{{", "{").replace("}}", "}"))
    with pytest.raises(AppFileError) as e:
        load_app(path)
    assert str(path) in str(e.value) and words in str(e.value), str(e.value)


def test_a_missing_app_file_or_stage_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(AppFileError, match="no such app file; write one"):
        load_app(tmp_path / "fnhost.app.toml")
    with pytest.raises(AppFileError, match=r"no stage 'prdo' \(its stages: dev, prod\); declare it as \[stage.prdo\]"):
        load_app(SHOP / "fnhost.app.toml", "prdo")


def test_stages_override_the_manifest_without_restating_it() -> None:
    base, dev, prod = (load_app(SHOP / "fnhost.app.toml", s) for s in (None, "dev", "prod"))
    assert [f.name for f in base.functions] == ["orders", "tally", "report"]
    report = {a.stage: a.function("report") for a in (base, dev, prod)}
    assert report[None].manifest.schedules[0].cron == "0 * * * *" and not report[None].overridden
    assert report[None].manifest_text == (SHOP / "report" / "fnhost.toml").read_text()  # untouched: same bundle
    assert report["dev"].manifest.schedules[0].rate_s == 3 and report["dev"].overridden
    assert report["dev"].manifest.grants.get("secrets") == ("report-key",)  # the rest is the guest's own
    assert prod.namespace == "shop-prod" and prod.function("orders").aliases == ("live", "stable")
    assert base.namespace is None and base.function("orders").aliases == ("live",)
    assert base.secrets == {"report-key": ["report"]}
    # the triggers and queues are the manifests': the app file names none of them
    assert base.function("tally").manifest.queue_triggers[0].queue == "orders"


def test_guest_directories_make_an_app_without_a_file(tmp_path: Path) -> None:
    """`fnhost dev` inside a function's directory (or with --guests DIR): each one a function."""
    app = app_of_guests([HELLO, ROOT / "guests" / "rust" / "counter"], where=tmp_path / APP_FILE)
    assert [(f.name, f.source) for f in app.functions] == [("hello", HELLO), ("counter", ROOT / "guests" / "rust" / "counter")]
    assert not any(f.overridden for f in app.functions)
    with pytest.raises(AppFileError, match="its function 'hello' is also"):
        app_of_guests([HELLO, HELLO])
    with pytest.raises(AppFileError, match=r"no readable fnhost\.toml"):
        app_of_guests([tmp_path])


def test_a_function_is_deployed_under_its_key(tmp_path: Path) -> None:
    app = load_app(hello_app(tmp_path, "greeter"))
    (f,) = app.functions
    assert f.manifest.name == "greeter" and 'name = "greeter"' in f.manifest_text and f.overridden


# deploy with live=false, and releases --------------------------------------------------------------
@pytest.fixture(scope="module")
def hello_wasm() -> bytes:
    return build_guest(HELLO, cache_dir=CACHE_DIR).wasm_path.read_bytes()


def bundle(name: str, wasm: bytes, greeting: str) -> bytes:
    return pack_bundle(f'name = "{name}"\n[env]\nGREETING = "{greeting}"\n', wasm)


def aliases(api: Api, name: str) -> dict[str, tuple[int, bool]]:
    return {a["alias"]: (a["version"], a["pinned"]) for a in api.call("GET", f"/v1/functions/{name}", api.admin).json()["aliases"]}


def test_deploy_without_live_then_release_all_or_nothing(tmp_path: Path, hello_wasm: bytes) -> None:
    api, stop = start_api(tmp_path / "data")
    try:
        assert api.deploy("a", bundle("a", hello_wasm, "v1")).json()["live_version"] == 1
        r = api.call("PUT", "/v1/functions/a?live=false", api.admin, content=bundle("a", hello_wasm, "v2"))
        assert r.status_code == 201 and (r.json()["version"], r.json()["live_version"]) == (2, 1)
        assert aliases(api, "a") == {"live": (1, False)}
        r = api.call("PUT", "/v1/functions/b?live=false", api.admin, content=bundle("b", hello_wasm, "v1"))
        assert r.json()["live_version"] is None and aliases(api, "b") == {}  # new, and nothing live yet
        assert api.call("POST", "/v1/functions/b/invoke", api.admin).status_code == 404
        assert api.call("PUT", "/v1/functions/a?live=maybe", api.admin, content=b"").status_code == 400

        moves = [{"function": "a", "alias": "live", "version": 2}, {"function": "b", "alias": "live", "version": 1},
                 {"function": "b", "alias": "stable", "version": 1}]
        r = api.call("POST", "/v1/releases", api.admin, json={"aliases": moves})
        assert r.status_code == 200, r.text
        assert r.json()["released"] == [
            {"function": "a", "alias": "live", "previous": 1, "version": 2},
            {"function": "b", "alias": "live", "previous": None, "version": 1},
            {"function": "b", "alias": "stable", "previous": None, "version": 1},
        ]
        assert aliases(api, "a") == {"live": (2, False)}  # released, still following deploys
        assert aliases(api, "b") == {"live": (1, False), "stable": (1, True)}
        assert api.deploy("a", bundle("a", hello_wasm, "v3")).json()["live_version"] == 3

        # a pinned live refuses the whole release: b's alias does not move either
        assert api.call("PUT", "/v1/functions/a/aliases/live", api.admin, json={"version": 1}).status_code == 200
        api.call("PUT", "/v1/functions/b?live=false", api.admin, content=bundle("b", hello_wasm, "v2"))
        both = [{"function": "b", "alias": "live", "version": 2}, {"function": "a", "alias": "live", "version": 3}]
        r = api.call("POST", "/v1/releases", api.admin, json={"aliases": both})
        assert r.status_code == 409 and "a:live is pinned to version 1" in r.json()["error"]["message"]
        assert "fnhost unpin" in r.json()["error"]["message"]
        assert aliases(api, "b")["live"] == (1, False) and aliases(api, "a")["live"] == (1, True)
        # an unknown version: nothing moves
        r = api.call("POST", "/v1/releases", api.admin,
                     json={"aliases": [{"function": "b", "alias": "live", "version": 2},
                                       {"function": "b", "alias": "stable", "version": 9}]})
        assert r.status_code == 404 and "has no version 9" in r.json()["error"]["message"]
        assert aliases(api, "b")["live"] == (1, False)

        # a key that may deploy b only cannot release a (nor learn it exists); nothing moves
        b_only = api.key("deploy", functions=["b"])
        r = api.call("POST", "/v1/releases", b_only, json={"aliases": both})
        assert r.status_code == 404 and "'a' does not exist" in r.json()["error"]["message"]
        assert aliases(api, "b")["live"] == (1, False)
        assert api.call("POST", "/v1/releases", api.key("invoke"), json={"aliases": both[:1]}).status_code == 403
        # another namespace's admin: b is not there
        other = api.call("POST", "/v1/keys", api.admin, json={"name": "o", "scopes": ["admin"], "namespace": "team-o"}).json()["token"]
        r = api.call("POST", "/v1/namespaces/team-o/releases", other, json={"aliases": both[:1]})
        assert r.status_code == 404
        assert api.call("POST", "/v1/releases", other, json={"aliases": both[:1]}).status_code == 404
    finally:
        stop()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, '"aliases" must be a list of 1..100'),
        ({"aliases": []}, '"aliases" must be a list of 1..100'),
        ({"aliases": [{"function": "a", "alias": "live", "version": 1}] * 101}, "1..100"),
        ({"aliases": ["a:live"]}, 'aliases[0]: must be an object with exactly "function", "alias" and "version"'),
        ({"aliases": [{"function": "a", "alias": "live", "version": 1, "pin": True}]}, "exactly"),
        ({"aliases": [{"function": "../a", "alias": "live", "version": 1}]}, "aliases[0].function: '../a' is not"),
        ({"aliases": [{"function": "a", "alias": "7", "version": 1}]}, "aliases[0].alias: '7' is not an alias"),
        ({"aliases": [{"function": "a", "alias": "live", "version": True}]}, "aliases[0].version: must be a version"),
        ({"aliases": [{"function": "a", "alias": "live", "version": 0}]}, "must be a version number"),
        ({"aliases": [{"function": "a", "alias": "live", "version": 1}, {"function": "a", "alias": "live", "version": 2}]},
         "aliases[1]: a:live is named twice"),
    ],
)
def test_bad_releases_are_400s_naming_the_entry(empty_api: Api, body: Any, words: str) -> None:
    r = empty_api.call("POST", "/v1/releases", empty_api.admin, json=body)
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text


@pytest.fixture(scope="module")
def empty_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api, stop = start_api(tmp_path_factory.mktemp("releases") / "data")
    yield api
    stop()


# `up` against a real `fnhost serve` ----------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data = tmp_path_factory.mktemp("apps") / "data"
    # --read-timeout: Hypercorn closes a connection that sends nothing for that long, even while its request
    # runs; compiling an 18 MB Python component on a loaded 2-core machine can take longer than the default 30 s
    with server(data, "--read-timeout", "600") as url:
        yield url, (data / "admin.key").read_text().strip()


def live_versions(client: Client, *names: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in names:
        found = client.json("GET", f"/v1/functions/{name}")["aliases"]
        out[name] = next((a["version"] for a in found if a["alias"] == "live"), None)
    return out


@pytest.mark.slow
def test_up_deploys_the_shop_and_orders_flow_through_the_queue_and_the_schedule(served: tuple[str, str]) -> None:
    url, token = served
    client = Client(url, token)
    app = load_app(SHOP / "fnhost.app.toml", "dev")
    with pytest.raises(UpError) as missing:
        up(app, client)
    assert str(missing.value) == (
        "nothing was deployed: missing secrets: report-key (needed by report); set them first: "
        "fnhost secrets set report-key"
    )
    assert client.json("GET", "/v1/functions")["functions"] == []
    client.json("PUT", "/v1/secrets/report-key", json={"value": "test-key"})

    report = up(app, client)
    assert report.lines() == [
        "app shop (stage dev): released",
        "  orders: new version 1; live (new) -> 1",
        "  tally: new version 1; live (new) -> 1",
        "  report: new version 1; live (new) -> 1",
    ]
    for order in ({"item": "apple", "qty": 2}, {"item": "apple", "qty": 2}, {"item": "pear", "qty": 1}):
        r = httpx.post(f"{url}/fn/orders/orders", json=order, timeout=30)
        assert r.status_code == 202 and r.json()["queued"], r.text
    deadline, seen = time.monotonic() + 90, None
    while time.monotonic() < deadline:  # tally drains the queue; the 3 s schedule then reports it
        r = httpx.get(f"{url}/fn/orders/report", timeout=30)
        seen = r.json()
        if r.status_code == 200 and seen["orders"] == 3:
            break
        time.sleep(0.5)
    assert seen is not None and seen["orders"] == 3 and seen["totals"] == {"apple": 4, "pear": 1}, seen
    body = json.dumps({k: v for k, v in seen.items() if k != "signature"}, sort_keys=True)
    assert seen["signature"] == hmac.new(b"test-key", body.encode(), hashlib.sha256).hexdigest()

    again = up(app, client)
    assert again.lines()[0] == "app shop (stage dev): nothing changed"
    assert again.lines()[1:] == [f"  {n}: unchanged (version 1)" for n in ("orders", "tally", "report")]
    usage = client.json("GET", "/v1/usage")["totals"]
    assert {u["function"] for u in usage} >= {"orders", "tally", "report"}


@pytest.mark.slow
def test_up_failing_midway_moves_no_alias_and_the_next_up_finishes(served: tuple[str, str], tmp_path: Path) -> None:
    url, token = served
    admin = Client(url, token)
    for step in ("v1", "v2", "v3"):
        (tmp_path / step).mkdir()
    first = hello_app(tmp_path / "v1", "ha", "hb", "hc")
    assert [r.version for r in up(load_app(first), admin).functions] == [1, 1, 1]

    override = "".join(f'[functions.{n}.manifest.env]\nGREETING = "Hi"\n' for n in ("ha", "hb", "hc"))
    second = load_app(hello_app(tmp_path / "v2", "ha", "hb", "hc", extra=override))
    key = admin.json("POST", "/v1/keys", json={"name": "ab", "scopes": ["deploy"], "functions": ["ha", "hb"]})["token"]
    with pytest.raises(UpError) as stopped:
        up(second, Client(url, key))
    message = str(stopped.value)
    assert message.startswith("uploading hc failed: ")
    assert "uploaded, not live: ha version 2, hb version 2. No alias was moved" in message
    assert "run `fnhost up` again" in message
    assert live_versions(admin, "ha", "hb", "hc") == {"ha": 1, "hb": 1, "hc": 1}

    finished = up(second, admin)
    assert [f.summary() for f in finished.functions] == [
        "ha: version 2; live 1 -> 2",  # uploaded by the failed up, released now
        "hb: version 2; live 1 -> 2",
        "hc: new version 2; live 1 -> 2",
    ]
    # a rollback pins live: the release refuses, and nothing of the app moves
    admin.json("PUT", "/v1/functions/hb/aliases/live", json={"version": 1})
    third = load_app(hello_app(tmp_path / "v3", "ha", "hb", "hc", extra=override.replace("Hi", "Hey")))
    with pytest.raises(UpError) as refused:
        up(third, admin)
    assert "the release failed: " in str(refused.value) and "hb:live is pinned to version 1" in str(refused.value)
    assert "fnhost unpin" in str(refused.value)
    assert live_versions(admin, "ha", "hb", "hc") == {"ha": 2, "hb": 1, "hc": 2}


def test_up_refuses_a_build_error_before_uploading_anything(served: tuple[str, str], tmp_path: Path) -> None:
    url, token = served
    broken = tmp_path / "broken"
    shutil.copytree(HELLO, broken, ignore=shutil.ignore_patterns("target"))
    manifest = broken / "fnhost.toml"  # fails in the build step (no toolchain runs), after `fine` has built
    manifest.write_text(manifest.read_text().replace('language = "rust"', 'language = "cobol"'))
    app = write_app(tmp_path, f'name = "x"\n[functions.fine]\nsource = "{HELLO}"\n[functions.broken]\nsource = "{broken}"\n')
    with pytest.raises(UpError, match=r"nothing was deployed: broken \(.*\) does not build: build.language: must be"):
        up(load_app(app), Client(url, token))
    names = {f["name"] for f in Client(url, token).json("GET", "/v1/functions")["functions"]}
    assert "fine" not in names and "broken" not in names


# the commands --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_up_and_usage_commands(served: tuple[str, str], tmp_path: Path) -> None:
    url, token = served
    env = _env(FNHOST_URL=url, FNHOST_TOKEN=token)
    app = hello_app(tmp_path, "cli-hello")
    done = fnhost("up", "--app", str(app), env=env)
    assert done.stdout.splitlines() == ["app hellos: released", "  cli-hello: new version 1; live (new) -> 1"]
    assert "releasing cli-hello:live -> 1" in done.stderr
    again = json.loads(fnhost("up", "--app", str(app), "--json", env=env).stdout)
    assert again["changed"] is False and again["functions"][0] == {"name": "cli-hello", "version": 1, "uploaded": False, "moves": []}
    bad = fnhost("up", "--app", str(app), "--stage", "prod", env=env, check=False)
    assert bad.returncode == 1 and "no stage 'prod' (its stages: none)" in bad.stderr
    assert fnhost("up", "--app", str(tmp_path / "nope.toml"), env=env, check=False).returncode == 1

    for _ in range(3):
        assert httpx.get(f"{url}/fn/cli-hello/hello?name=u", timeout=30).status_code == 200
    table = fnhost("usage", "--function", "cli-hello", env=env).stdout.splitlines()
    assert table[0].split()[:4] == ["FUNCTION", "START", "(UTC)", "INVOCATIONS"]
    assert [line.split()[0] for line in table[1:]] == ["cli-hello", "cli-hello"]  # this hour, then the total
    assert table[-1].split()[1:3] == ["total", "3"]
    as_json = json.loads(fnhost("usage", "--period", "day", "--function", "cli-hello", "--json", env=env).stdout)
    assert as_json["totals"][0]["invocations"] == 3 and as_json["period"] == "day"
    nosuch = fnhost("usage", "--function", "nosuch", env=env, check=False)
    assert nosuch.returncode == 1 and "function 'nosuch' does not exist" in nosuch.stderr


@pytest.mark.slow
def test_dev_command_redeploys_edits_and_keeps_serving_across_a_broken_one(tmp_path: Path) -> None:
    """`fnhost dev` beside an app file: stage dev by default, the secrets file seeded, an edit deployed,
    a broken edit reported while the last good version serves on, the fix deployed, and a function added
    to the app file deployed."""
    src = tmp_path / "hello"
    shutil.copytree(HELLO, src, ignore=shutil.ignore_patterns("target"))
    app_file = write_app(tmp_path, 'name = "dev"\n[functions.hello]\nsource = "hello"\n'
                                   '[stage.dev.functions.hello]\naliases = ["live", "dev"]\n')
    (tmp_path / SECRETS_FILE).write_text('dev-token = "from-the-local-file"\n')
    port = _free_port()
    log = open(tmp_path / "dev.log", "w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fnhost", "dev", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--cache-dir", str(COMPILED), "--read-timeout", "600"],
        cwd=tmp_path, env=_env(), stdout=log, stderr=subprocess.STDOUT,
    )

    def answer(function: str = "hello") -> str | None:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/fn/{function}/hello?name=d", timeout=5)
            return str(r.json().get("message")) if r.status_code == 200 else None
        except httpx.TransportError:
            return None

    def output() -> str:
        log.seek(0)
        return log.read()

    def wait_until(done: Any) -> None:
        deadline = time.monotonic() + 180
        while not done():
            assert proc.poll() is None and time.monotonic() < deadline, output()
            time.sleep(0.2)

    try:
        wait_until(lambda: answer() == "Hello, d!")
        assert "fnhost dev: stage dev of fnhost.app.toml" in output()
        token = (tmp_path / "data" / "admin.key").read_text().strip()
        api = Client(f"http://127.0.0.1:{port}", token)
        assert api.json("GET", "/v1/secrets")["secrets"] == ["dev-token"]
        assert "from-the-local-file" not in output()  # set, never printed
        assert {a["alias"] for a in api.aliases("hello")} == {"live", "dev"}
        lib = src / "src" / "lib.rs"
        good = lib.read_text().replace('"Hello, {}!"', '"Hey there, {}!"')
        lib.write_text(good)
        wait_until(lambda: answer() == "Hey there, d!")
        assert "hello: new version 2; live 1 -> 2" in output()

        lib.write_text(good + "\nthis is not rust\n")
        wait_until(lambda: "still serving the last good versions" in output())
        assert "hello (" in output() and "does not build" in output()
        assert answer() == "Hey there, d!"  # the last good version serves on
        lib.write_text(good.replace("Hey there", "Hi"))
        wait_until(lambda: answer() == "Hi, d!")
        app_file.write_text(app_file.read_text() + '[functions.hello-too]\nsource = "hello"\n')
        wait_until(lambda: answer("hello-too") == "Hi, d!")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "app dev (stage dev): released" in output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
