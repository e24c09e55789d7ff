"""`fnhost.build` and the Python guest SDK: real componentize-py builds of the example guests,
the cache, build errors, and the SDK's pure-Python parts run on the host over generated bindings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import wasmtime
from conftest import needs_componentize_py
from wasmtime.component import Component

from fnhost.build import build_guest, detect_language, read_guest, sdk_root, source_hash
from fnhost.errors import BuildError, ManifestError

ROOT = Path(__file__).resolve().parents[1]
GUESTS = ROOT / "guests" / "python"
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
needs_toolchain = needs_componentize_py


@pytest.mark.slow
@needs_toolchain
@pytest.mark.parametrize("guest", ["hello", "counter", "notify", "chaos"])
def test_example_builds_to_a_component_and_is_cached(guest: str) -> None:
    built = build_guest(GUESTS / guest)
    assert built.language == "python"
    assert built.manifest.name == guest
    assert built.wasm_path.read_bytes()[:8] == COMPONENT_HEADER

    start = time.perf_counter()
    again = build_guest(GUESTS / guest)
    assert again.cached
    assert again.wasm_path == built.wasm_path
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
@needs_toolchain
def test_built_component_exports_both_handlers() -> None:
    built = build_guest(GUESTS / "hello")
    component = Component.from_file(wasmtime.Engine(), str(built.wasm_path))
    for name in ("handle-http", "handle-event"):
        assert component.get_export_index(name) is not None, name


def test_cache_key_follows_sources_and_ignores_build_outputs(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    key = source_hash(tmp_path, language="python", toolchain="t 1", sdk_dir=None)
    (tmp_path / "function.wasm").write_bytes(b"\0asm")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    assert source_hash(tmp_path, language="python", toolchain="t 1", sdk_dir=None) == key
    assert source_hash(tmp_path, language="python", toolchain="t 2", sdk_dir=None) != key
    assert source_hash(tmp_path, language="python", toolchain="t 1", sdk_dir=sdk_root() / "python") != key
    (tmp_path / "app.py").write_text("x = 2\n")
    assert source_hash(tmp_path, language="python", toolchain="t 1", sdk_dir=None) != key


@pytest.mark.parametrize(
    ("marker", "language"), [("Cargo.toml", "rust"), ("go.mod", "go"), ("guest.c", "c"), ("app.py", "python")]
)
def test_language_detection(tmp_path: Path, marker: str, language: str) -> None:
    (tmp_path / marker).write_text("")
    assert detect_language(tmp_path) == language


def test_build_language_in_manifest_overrides_detection(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("")
    (tmp_path / "fnhost.toml").write_text('name = "f"\n[build]\nlanguage = "python"\n')
    assert read_guest(tmp_path)[1] == "python"
    (tmp_path / "fnhost.toml").write_text('name = "f"\n[build]\nlanguage = "cobol"\n')
    with pytest.raises(ManifestError, match=r"build\.language"):
        read_guest(tmp_path)


def test_missing_manifest_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no fnhost\.toml"):
        build_guest(tmp_path, cache_dir=tmp_path / "cache")


def test_missing_toolchain_names_the_setup_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fnhost.build.python as python_build

    python_build.toolchain_id.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no componentize-py on it
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # nor beside the interpreter
    (tmp_path / "fnhost.toml").write_text('name = "f"\n')
    (tmp_path / "app.py").write_text("")
    try:
        with pytest.raises(BuildError, match="just setup"):
            build_guest(tmp_path, cache_dir=tmp_path / "cache")
    finally:
        python_build.toolchain_id.cache_clear()


@pytest.mark.slow
@needs_toolchain
def test_compile_error_carries_the_python_traceback(tmp_path: Path) -> None:
    (tmp_path / "fnhost.toml").write_text('name = "broken"\n')
    (tmp_path / "app.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(BuildError, match="ModuleNotFoundError: No module named 'no_such_module_anywhere'"):
        build_guest(tmp_path, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.wasm"))


@pytest.mark.slow
@needs_toolchain
def test_python_m_fnhost_build_writes_the_output(tmp_path: Path) -> None:
    out = tmp_path / "hello.wasm"
    done = subprocess.run(
        [sys.executable, "-m", "fnhost", "build", str(GUESTS / "hello"), "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "host")},
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == COMPONENT_HEADER


# The SDK, imported on the host over the bindings componentize-py generates for the WIT world: the
# generated import functions are never called here, only the pure-Python request/response/event code.


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory, componentize_py: str) -> Iterator[ModuleType]:
    bindings = tmp_path_factory.mktemp("bindings")
    subprocess.run(
        [componentize_py, "-d", str(sdk_root() / "wit"), "-w", "function", "bindings", str(bindings)],
        check=True, capture_output=True,
    )  # fmt: skip
    sys.path[:0] = [str(bindings), str(sdk_root() / "python")]
    try:
        import fnhost_sdk

        yield fnhost_sdk
    finally:
        del sys.path[:2]
        for name in [m for m in sys.modules if m.split(".")[0] in ("fnhost_sdk", "wit_world", "componentize_py_types")]:
            del sys.modules[name]


def test_sdk_request_parsing(sdk: ModuleType) -> None:
    req = sdk.Request("POST", "/items/3?a=1&b=&a=2", [("Content-Type", "application/json")], b'{"x": 1}')
    assert (req.path, req.query, req.query_list) == (
        "/items/3",
        {"a": "1", "b": ""},
        [("a", "1"), ("b", ""), ("a", "2")],
    )
    assert req.headers.get("content-type") == req.headers["CONTENT-TYPE"] == "application/json"
    assert req.headers.get("missing") is None and "content-type" in req.headers
    assert req.json() == {"x": 1} and req.text() == '{"x": 1}'
    with pytest.raises(ValueError):
        sdk.Request("POST", "/", None, b"\x00\x01 not json").json()


def test_sdk_responses_and_outputs(sdk: ModuleType) -> None:
    from fnhost_sdk._events import encode_output
    from fnhost_sdk._http import to_response

    r = sdk.Response.json({"a": [1]}, status=201)
    assert (r.status, r.body, r.headers.get("content-type")) == (201, b'{"a":[1]}', "application/json")
    assert sdk.Response.text("hi").headers.get("content-type").startswith("text/plain")
    assert to_response(b"\xff").body == b"\xff" and to_response({"k": 1}).body == b'{"k":1}'
    with pytest.raises(ValueError):
        sdk.Response(status=42)
    assert (
        encode_output({"k": "v"}) == b'{"k":"v"}' and encode_output("é") == "é".encode() and encode_output(None) == b""
    )
    with pytest.raises(TypeError, match="must return bytes"):
        encode_output(3.5)


def test_sdk_app_dispatch_and_failures(sdk: ModuleType) -> None:
    from componentize_py_types import Err
    from wit_world.imports import types

    app = sdk.App()
    ctx = types.Context("inv", "f", "1", int(time.time() * 1000) + 2000, 128)

    @app.event
    def on_event(event: object, c: object) -> object:
        assert isinstance(c, sdk.Context) and 0 < c.remaining_ms() <= 2000
        if isinstance(event, sdk.QueueBatch):
            return sdk.EventResult({"n": len(event.messages)}, failed_message_ids=[event.messages[0].id])
        payload = event.text()  # type: ignore[attr-defined]
        if payload == "exit":
            raise SystemExit(3)
        if payload == "raise":
            raise KeyError("k")
        return payload

    batch = types.Event_QueueBatch([types.QueueMessage("m1", "q", b"x", 1)])
    assert app.handle_event(ctx, batch) == types.EventResult(b'{"n":1}', ["m1"])
    assert app.handle_event(ctx, types.Event_Invoke(b"hi")) == types.EventResult(b"hi", [])
    with pytest.raises(Err) as failed:
        app.handle_event(ctx, types.Event_Invoke(b"raise"))
    assert failed.value.value.startswith("KeyError: 'k' (at ") and failed.value.value.endswith("test_build_python.py:195)")
    with pytest.raises(SystemExit):  # left to trap the instance
        app.handle_event(ctx, types.Event_Invoke(b"exit"))
    with pytest.raises(Err, match="no HTTP handler"):
        app.handle_http(ctx, types.HttpRequest("GET", "/", [], b""))
    world = app.world()
    assert world.__name__ == "WitWorld" and __import__("wit_world").WitWorld in world.__mro__


def test_sdk_maps_every_wit_error(sdk: ModuleType) -> None:
    from componentize_py_types import Err
    from wit_world.imports import types

    from fnhost_sdk._errors import host_error

    cases = [
        (types.Error_Denied("no"), sdk.Denied),
        (types.Error_NotFound(), sdk.NotFound),
        (types.Error_TooLarge("big"), sdk.TooLarge),
        (types.Error_LimitExceeded("spent"), sdk.LimitExceeded),
        (types.Error_Unavailable("down"), sdk.Unavailable),
        (types.Error_Invalid("bad"), sdk.InvalidArgument),
    ]
    for case, cls in cases:
        error = host_error(Err(case))
        assert type(error) is cls and isinstance(error, sdk.HostError)
    assert host_error(Err(types.Error_Denied("kv bucket 'x' is not granted"))).message == "kv bucket 'x' is not granted"


def test_sdk_refuses_handlers_it_cannot_call(sdk: ModuleType) -> None:
    # app.py's top level runs at build time, so these fail `fnhost build`, not the first request
    app = sdk.App()
    with pytest.raises(TypeError, match=r"app\.http: handle cannot be called as \(request, ctx\)"):

        @app.http
        def handle(req: object, ctx: object, extra: object) -> object:
            return b""

    async def on_event(event: object, ctx: object) -> object:
        return b""

    with pytest.raises(TypeError, match="on_event is async; handlers must be synchronous"):
        app.event(on_event)
    app.event(lambda event, ctx=None: b"")  # defaults are fine
