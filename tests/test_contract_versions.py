"""Contract versions: the host serves `fnhost:function@0.1.0` and `@0.2.0` side by side. What it links
for each version is derived from the capabilities' declarations; these tests hold that to the WIT
files (the current one and the frozen ones in sdk/wit-history/), and run guests built against each."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
import wasmtime
from conftest import CACHE_DIR, needs_componentize_py
from wat_guests import PRELUDE

from fnhost import Host, Outcome
from fnhost.build import require_tool
from fnhost.capabilities import CAPABILITIES
from fnhost.capabilities.base import CONTRACT_VERSIONS, CORE_MODULES
from fnhost.errors import InvalidWasm

ROOT = Path(__file__).resolve().parents[1]
WIT = {"0.2.0": ROOT / "sdk/wit/fnhost.wit", "0.1.0": ROOT / "sdk/wit-history/0.1.0/fnhost.wit"}


def wit_functions(path: Path) -> dict[str, dict[str, str]]:
    """interface → function name → its signature, as written in a WIT file."""
    text = path.read_text()
    out: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"^interface ([a-z-]+) \{(.*?)^\}", text, re.S | re.M):
        out[name] = {f: " ".join(sig.split()) for f, sig in re.findall(r"^\s*([a-z-]+): func(.*);\s*$", body, re.M)}
    return out


def test_every_served_version_has_its_wit_and_a_core_module() -> None:
    assert set(WIT) == set(CONTRACT_VERSIONS) == set(CORE_MODULES)
    for version, path in WIT.items():
        assert f"package fnhost:function@{version};" in path.read_text()


@pytest.mark.parametrize("version", CONTRACT_VERSIONS)
def test_the_host_links_exactly_the_functions_of_each_versions_wit(version: str) -> None:
    declared = {c.interface: sorted(op.name for op in c.operations_in(version)) for c in CAPABILITIES}
    declared = {iface: ops for iface, ops in declared.items() if ops}  # a capability may be newer than `version`
    written = {iface: sorted(funcs) for iface, funcs in wit_functions(WIT[version]).items() if funcs}
    assert declared == written


def test_a_newer_version_only_adds_functions() -> None:
    old, new = wit_functions(WIT["0.1.0"]), wit_functions(WIT["0.2.0"])
    for iface, funcs in old.items():
        for name, signature in funcs.items():
            assert new[iface].get(name) == signature, f"{iface}.{name} changed in 0.2.0"


# --- core modules: one import module per version -----------------------------------------------------
def increment_guest(module: str) -> bytes:
    """kv_increment(bucket "b", key "k", delta 5) twice from import module `module`; the output is
    the second call's status (i64) and the pending result it left (the s64 value)."""
    return wasmtime.wat2wasm(f"""(module
  (import "{module}" "kv_increment" (func $inc (param i32 i32 i32 i32 i64) (result i64)))
  (import "{module}" "result_read" (func $read (param i32) (result i32)))
  {PRELUDE}
  (data (i32.const 16) "bk")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (drop (call $inc (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 1) (i64.const 5)))
    (i64.store (i32.const 37) (call $inc (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 1) (i64.const 5)))
    (drop (call $read (i32.const 45)))
    (i32.store8 (i32.const 32) (i32.const 0))
    (i32.store (i32.const 33) (i32.const 16))
    (i32.store (i32.const 53) (i32.const 0))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 25))))""")


def test_a_core_module_of_0_2_0_imports_the_new_operations_from_its_module(host: Host) -> None:
    host.deploy("inc", increment_guest(CORE_MODULES["0.2.0"]), {"name": "inc", "grants": {"kv": ["b"]}})
    r = host.invoke("inc")
    assert r.outcome is Outcome.OK, r.error
    status, value = struct.unpack("<qq", r.output)
    assert (status, value) == (8, 10)
    assert host.kv.get("b", "k") == b"10"


def test_the_0_1_0_core_module_has_no_new_operations(host: Host) -> None:
    with pytest.raises(InvalidWasm, match="imports something fnhost does not provide"):
        host.deploy("inc", increment_guest(CORE_MODULES["0.1.0"]), {"name": "inc", "grants": {"kv": ["b"]}})


# --- a Python component built against 0.1.0 -------------------------------------------------------
OLD_GUEST = """
from fnhost_sdk import App, kv, log, queue

app = App()


@app.event
def on_event(event, ctx):
    n = int(kv.get("counters", "n") or b"0") + 1
    kv.set("counters", "n", str(n))
    log.info(f"n={n}")
    size = len(getattr(event, "payload", b""))
    return {"n": n, "keys": kv.list_keys("counters"), "message": queue.publish("jobs", b"x") != "", "size": size}


WitWorld = app.world()
"""


def build_against(version: str, tmp: Path) -> bytes:
    """A Python guest built with componentize-py against the WIT of `version` (cached by inputs)."""
    wit = WIT[version].parent
    sdk = ROOT / "sdk/python"
    h = hashlib.sha256(OLD_GUEST.encode() + WIT[version].read_bytes())
    for path in sorted(sdk.rglob("*.py")):
        h.update(path.read_bytes())
    target = CACHE_DIR / "contract-versions" / f"{h.hexdigest()}.wasm"
    if not target.is_file():
        (tmp / "app.py").write_text(OLD_GUEST)
        out = tmp / "function.wasm"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        subprocess.run(
            [require_tool("componentize-py", "Python guests"), "-d", str(wit), "-w", "function", "componentize", "-p", str(tmp), "-p", str(sdk),
             "app", "-o", str(out)],
            check=True, capture_output=True, env=env, cwd=tmp, timeout=600,
        )  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(out, target)
    return target.read_bytes()


@pytest.mark.slow
@needs_componentize_py
def test_a_python_component_built_against_0_1_0_deploys_and_runs_unchanged(host: Host, tmp_path: Path) -> None:
    wasm = build_against("0.1.0", tmp_path)
    assert b"fnhost:function/kv@0.1.0" in wasm and b"fnhost:function/kv@0.2.0" not in wasm
    host.deploy("old", wasm, {"name": "old", "grants": {"kv": ["counters"], "queues": ["jobs"]}})
    for n, payload in ((1, b""), (2, b"x" * 100_000)):  # a large payload stays in the record for 0.1.0
        r = host.invoke("old", payload)
        assert r.outcome is Outcome.OK, r.error
        assert json.loads(r.output) == {"n": n, "keys": ["n"], "message": True, "size": len(payload)}
        assert f"[info] n={n}" in r.logs
    r = host.invoke_http("old", "GET", "/")
    assert r.outcome is Outcome.GUEST_ERROR  # it exports no HTTP handler: the same answer as on 0.1.0 hosts


# --- core modules built against 0.1.0 with the SDKs of then ------------------------------------------
OLD_BINARIES = Path(__file__).resolve().parent / "data" / "contract-0.1.0"


@pytest.mark.parametrize("lang", ["rust", "c"])
def test_a_core_guest_built_against_0_1_0_deploys_and_runs_unchanged(host: Host, lang: str) -> None:
    wasm = (OLD_BINARIES / f"{lang}-counter.wasm").read_bytes()
    imported = {i.module for i in wasmtime.Module(wasmtime.Engine(), wasm).imports}
    assert imported - {"wasi_snapshot_preview1"} == {"fnhost"}
    host.deploy("counter", wasm, {"name": "counter", "grants": {"kv": ["counters"]}})
    for n in (1, 2):
        assert host.invoke("counter", b'{"op": "incr", "key": "k"}').output == b'{"key":"k","value":%d}' % n
    assert host.invoke("counter", b'{"op": "list"}').output == b'{"keys":["k"]}'
    r = host.invoke("counter", b'{"op": "incr", "bucket": "other", "key": "k"}')
    assert r.outcome is Outcome.OK and b'"error":"denied"' in r.output


def test_a_core_call_with_a_pointer_outside_memory_is_invalid_not_a_trap(host: Host) -> None:
    """kv_compare_and_swap with `expected` pointing past the end of memory: status -6 (`invalid`)."""
    wasm = wasmtime.wat2wasm(f"""(module
  (import "fnhost@0.2.0" "kv_compare_and_swap"
    (func $cas (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  {PRELUDE}
  (data (i32.const 16) "bk")
  (func (export "fnhost_handle_event") (param i32 i32) (result i64)
    (i64.store (i32.const 37) (call $cas (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 1)
                                         (i32.const 1) (i32.const 0xFFFFFF00) (i32.const 64) (i32.const 16) (i32.const 1)))
    (i32.store8 (i32.const 32) (i32.const 0))
    (i32.store (i32.const 33) (i32.const 8))
    (i32.store (i32.const 45) (i32.const 0))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 17))))""")
    host.deploy("cas", wasm, {"name": "cas", "grants": {"kv": ["b"]}})
    r = host.invoke("cas")
    assert r.outcome is Outcome.OK, r.error
    assert struct.unpack("<q", r.output) == (-6,)
    assert host.kv.get("b", "k") is None
