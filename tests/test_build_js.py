"""`fnhost build` for JavaScript guests: npm packages bundled, stacks that name the guest's own files
and lines, build-time errors for what would otherwise fail at run time, and the SDK's TypeScript
declarations checked against the examples. One real build is shared by the tests that run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import build_or_skip, missing_toolchain

from fnhost import Host, Outcome
from fnhost.build import BuiltGuest, build_guest, detect_language, read_guest, sdk_root, source_hash
from fnhost.build import js as js_build
from fnhost.errors import BuildError

ROOT = Path(__file__).resolve().parents[1]

APP = """\
import { App, NotFound, Response, log, secrets } from 'fnhost';
import shout from 'tinyfmt';
import pad from 'cjspad';
import { check } from './lib/check.js';

const app = new App();
app.http((req) => {
  if (req.path !== '/secret') return Response.text(shout(pad(req.query.n ?? '7', 3)));
  try {
    return Response.text(secrets.get('api-token'));
  } catch (e) {
    return Response.json({ notFound: e instanceof NotFound, message: e.message }, 404);
  }
});
app.event((event) => {
  log.info('checking');
  return { checked: check(event.text()) };
});
export const { handleHttp, handleEvent } = app.world();
"""
CHECK = """\
export function check(text) {
  if (text === 'bad') throw new TypeError(`bad input: ${text}`);
  return text;
}
"""


def _package(root: Path, name: str, files: dict[str, str], meta: dict[str, object]) -> None:
    pkg = root / "node_modules" / name
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", **meta}))
    for rel, text in files.items():
        (pkg / rel).write_text(text)


def write_guest(root: Path, app: str = APP) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fnhost.toml").write_text('name = "jsdeps"\n[grants]\nsecrets = ["api-token"]\n')
    (root / "app.js").write_text(app)
    (root / "lib").mkdir(exist_ok=True)
    (root / "lib" / "check.js").write_text(CHECK)
    # an ESM package (exports map) and a CommonJS one, as `npm install` would leave them
    _package(root, "tinyfmt", {"esm.js": "export default function shout(s) { return s.toUpperCase() + '!'; }\n"},
             {"type": "module", "exports": {".": {"import": "./esm.js"}}})  # fmt: skip
    _package(root, "cjspad", {"index.js": "module.exports = (s, n) => String(s).padStart(n, '0');\n"},
             {"main": "index.js"})  # fmt: skip
    return root


def _tools() -> None:
    try:
        js_build.tools_dir()
        js_build.node()
    except BuildError as e:
        missing_toolchain(str(e))


@pytest.fixture(scope="module")
def deps_guest(tmp_path_factory: pytest.TempPathFactory) -> BuiltGuest:
    _tools()
    return build_or_skip(write_guest(tmp_path_factory.mktemp("jsdeps") / "jsdeps"))


@pytest.mark.parametrize("marker", ["app.js", "package.json"])
def test_js_is_detected_from_app_js_or_package_json(tmp_path: Path, marker: str) -> None:
    (tmp_path / marker).write_text("{}")
    assert detect_language(tmp_path) == "js"
    (tmp_path / "fnhost.toml").write_text('name = "f"\n')
    assert read_guest(tmp_path)[1] == "js"


def test_entry_is_app_js_or_package_json_main(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"main": "src/index.js"}')
    with pytest.raises(BuildError, match=r"no app\.js"):
        js_build.entry_module(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.js").write_text("")
    assert js_build.entry_module(tmp_path) == "src/index.js"
    (tmp_path / "app.js").write_text("")
    assert js_build.entry_module(tmp_path) == "app.js"


def test_installed_npm_packages_are_part_of_the_cache_key(tmp_path: Path) -> None:
    guest = write_guest(tmp_path / "g")

    def key() -> str:
        deps = js_build.dependency_key(guest)
        return source_hash(guest, language="js", toolchain="t", sdk_dir=None, dependencies=deps)

    before = key()
    assert key() == before
    (guest / "node_modules" / "cjspad" / "package.json").write_text('{"name": "cjspad", "version": "2.0.0"}')
    assert key() != before  # node_modules is not hashed as source, but what is installed there is


def test_missing_tools_name_the_setup_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FNHOST_JS_TOOLS", str(tmp_path / "none"))
    js_build.tools_dir.cache_clear()
    js_build.toolchain_id.cache_clear()
    try:
        with pytest.raises(BuildError, match="just setup-js"):
            build_guest(write_guest(tmp_path / "g"), cache_dir=tmp_path / "cache")
    finally:
        js_build.tools_dir.cache_clear()
        js_build.toolchain_id.cache_clear()


@pytest.mark.slow
def test_npm_packages_are_bundled_into_the_component(deps_guest: BuiltGuest, host: Host) -> None:
    host.deploy("jsdeps", deps_guest.wasm_path.read_bytes(), deps_guest.manifest)
    r = host.invoke_http("jsdeps", "GET", "/?n=42", [], b"")
    assert r.outcome is Outcome.OK, r.error
    assert r.response is not None and bytes(r.response.body) == b"042!"


@pytest.mark.slow
def test_a_thrown_error_names_the_guest_file_and_line(deps_guest: BuiltGuest, host: Host) -> None:
    host.deploy("jsdeps", deps_guest.wasm_path.read_bytes(), deps_guest.manifest)
    assert host.invoke("jsdeps", b"fine").output == b'{"checked":"fine"}'
    r = host.invoke("jsdeps", b"bad")
    assert r.outcome is Outcome.GUEST_ERROR
    assert r.error == "TypeError: bad input: bad (at lib/check.js:2:29)"
    stderr = [line for line in r.logs if line.startswith("[stderr]")]
    assert stderr[:2] == ["[stderr] TypeError: bad input: bad", "[stderr] check@lib/check.js:2:29"], r.logs
    assert any("app.js:17:" in line for line in stderr), stderr  # the caller's frame too


@pytest.mark.slow
def test_an_unset_secret_names_itself_and_the_command_that_sets_it(deps_guest: BuiltGuest, host: Host) -> None:
    host.deploy("jsdeps", deps_guest.wasm_path.read_bytes(), deps_guest.manifest)
    r = host.invoke_http("jsdeps", "GET", "/secret", [], b"")
    hint = "secret 'api-token' is granted but not set; set it with `fnhost secrets set api-token`"
    assert r.response is not None and json.loads(r.response.body) == {"notFound": True, "message": hint}
    assert f"[fnhost] {hint}" in r.logs
    host.secrets.set("api-token", "s3cret")
    r = host.invoke_http("jsdeps", "GET", "/secret", [], b"")
    assert r.response is not None and r.response.body == b"s3cret"


@pytest.mark.slow
def test_an_async_handler_fails_the_build(tmp_path: Path) -> None:
    _tools()
    app = APP.replace("app.event((event) =>", "app.event(async (event) =>")
    with pytest.raises(BuildError, match=r"app\.event: .*is async; handlers must be synchronous"):
        build_guest(write_guest(tmp_path / "g", app), cache_dir=tmp_path / "cache")


def test_a_node_builtin_is_a_build_error_naming_it(tmp_path: Path) -> None:
    _tools()
    guest = write_guest(tmp_path / "g", "import { readFileSync } from 'node:fs';\n" + APP)
    with pytest.raises(BuildError, match=r'app\.js: imports the Node\.js built-in "node:fs"'):
        build_guest(guest, cache_dir=tmp_path / "cache")
    _package(guest, "needsfs", {"index.js": "import fs from 'fs';\nexport default fs.readFileSync;\n"},
             {"type": "module", "main": "index.js"})  # fmt: skip
    (guest / "app.js").write_text("import read from 'needsfs';\n" + APP)
    with pytest.raises(BuildError, match=r"bundling the npm packages .*needsfs.* failed"):
        build_guest(guest, cache_dir=tmp_path / "cache")


def test_an_entry_without_the_world_exports_is_a_build_error(tmp_path: Path) -> None:
    _tools()
    guest = write_guest(tmp_path / "g", APP.replace("export const { handleHttp, handleEvent }", "export const { handleHttp }"))
    with pytest.raises(BuildError, match=r"app\.js: does not export handleEvent, the function world's handlers"):
        build_guest(guest, cache_dir=tmp_path / "cache")


def test_typescript_declarations_describe_the_examples(tmp_path: Path) -> None:
    _tools()
    tsc = js_build.tools_dir() / ".bin" / "tsc"
    if not tsc.exists():
        pytest.skip("no tsc among the JS build tools (typescript comes with componentize-js)")
    config = {
        "compilerOptions": {
            "noEmit": True, "strict": False, "allowJs": True, "checkJs": True, "module": "esnext", "target": "es2022",
            "moduleResolution": "bundler", "lib": ["es2022", "dom"],
            "paths": {"fnhost": [str(sdk_root() / "js" / "index.d.ts")]},
        },
        "files": [str(p) for p in [*sorted((ROOT / "guests" / "js").glob("*/app.js")), sdk_root() / "templates/js/app.js"]],
    }  # fmt: skip
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    done = subprocess.run([str(tsc), "-p", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
