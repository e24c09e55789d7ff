"""Large bodies outside `list<u8>` (WIT `fnhost:function/body`): real Python and JS components, both
directions, fresh and warm instances, and guests that write past, short of or over what they may."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import pytest
from conftest import build_or_skip, needs_componentize_py, wait_for

from fnhost import Host, Outcome
from fnhost.capabilities.body import INLINE_MAX
from fnhost.runtime.limits import INPUT_ROOT

GUESTS = Path(__file__).resolve().parents[1] / "guests"
pytestmark = pytest.mark.slow

# Over what a Python component could return as list<u8> (~2.7 MiB: Wasmtime's hostcall fuel ran out)
BIG = 5 * 1024 * 1024


def deploy(host: Host, lang: str, guest: str, name: str, **limits: int) -> None:
    built = build_or_skip(GUESTS / lang / guest)
    manifest = {**built.manifest.to_dict(), "name": name}
    manifest["limits"] = {**manifest.get("limits", {}), **limits}
    host.deploy(name, built.wasm_path.read_bytes(), manifest)


def echo(host: Host, name: str, body: bytes) -> bytes:
    r = host.invoke_http(name, "POST", "/echo", [("content-type", "application/octet-stream")], body)
    assert r.outcome is Outcome.OK and r.response is not None, r.error
    return r.response.body


@pytest.mark.parametrize("lang", ["python", "js"])
def test_bodies_of_every_size_round_trip_fresh_and_warm(host: Host, lang: str, request: pytest.FixtureRequest) -> None:
    if lang == "python":
        request.getfixturevalue("componentize_py")
    # generous timeouts: these run on Winch code while the Cranelift build compiles alongside, and a
    # warm Python instance takes a 5 MiB binary input as latin-1 text (~80 wasm instructions a byte)
    deploy(host, lang, "hello", "fresh", timeout_ms=60_000)
    deploy(host, lang, "hello", "warm", instance_reuse=100, timeout_ms=60_000)
    # JS outputs over 2 MiB go as latin-1 text, which StarlingMonkey makes at ~3,000 instructions a
    # byte: too slow for 5 MiB within the default timeout, so JS echoes at most 2 MiB here
    sizes = [0, 1, INLINE_MAX, INLINE_MAX + 1, 300_000, BIG if lang == "python" else 2 * 1024 * 1024]
    for name in ("fresh", "warm", "warm"):  # the warm instance twice: a later call never sees an earlier input
        for size in sizes:
            body = os.urandom(size)
            assert echo(host, name, body) == body, (name, size)
        # what the handler sees is the body itself, whichever way it came
        r = host.invoke_http(name, "PUT", "/x", [], b"a" * BIG)
        assert r.response is not None and json.loads(r.response.body)["body_length"] == BIG
        payload = bytes(range(256)) * 1000  # not JSON: echoed
        r = host.invoke(name, payload)
        assert r.outcome is Outcome.OK and r.output == payload, r.error


@needs_componentize_py
def test_a_response_over_max_response_bytes_is_refused(host: Host) -> None:
    deploy(host, "python", "chaos", "chaos", max_response_bytes=100_000)
    assert host.invoke("chaos", b"big:100000").output == b"x" * 100_000
    r = host.invoke("chaos", b"big:100001")
    assert r.outcome is Outcome.GUEST_ERROR and "max_response_bytes (100000)" in (r.error or "")
    r = host.invoke("chaos", b"announce:100001:0")  # announcing more than the cap: refused at once
    assert r.outcome is Outcome.GUEST_ERROR and "over limits.max_response_bytes (100000)" in (r.error or "")


# stdout reaches the host through a callback per write (a fresh instance with a small input) or a
# pipe (runtime/limits.py StdoutPipe: a warm instance, or a large input): the same rules hold in both
CHANNELS = pytest.mark.parametrize("reuse", [0, 10], ids=["callback", "pipe"])


@needs_componentize_py
@CHANNELS
def test_a_guest_writing_past_its_announced_output_cannot_grow_it(host: Host, reuse: int) -> None:
    deploy(host, "python", "chaos", "chaos", max_response_bytes=1_000_000, max_log_bytes=10_000, instance_reuse=reuse)
    # 40 MB written after announcing 1,000 bytes: the output is those 1,000, the rest a bounded log
    for _ in range(2):  # twice: a warm instance's second call too
        r = host.invoke("chaos", b"announce:1000:40000000")
        assert r.outcome is Outcome.OK, r.error
        assert r.output == b"y" * 1000
        assert sum(len(line) for line in r.logs) < 11_000 and "log truncated" in r.logs[-1]


@needs_componentize_py
@CHANNELS
def test_an_output_shorter_than_announced_is_the_functions_error(host: Host, reuse: int) -> None:
    deploy(host, "python", "chaos", "chaos", instance_reuse=reuse)
    r = host.invoke("chaos", b"announce:50000:20000")
    assert r.outcome is Outcome.GUEST_ERROR
    assert r.error == "wrote 20000 of the 50000 output bytes announced to stdout"
    assert host.invoke("chaos", b"ok").output == b"ok"  # the next invocation is unaffected


@needs_componentize_py
@CHANNELS
def test_stdout_stderr_and_host_log_lines_keep_their_order(host: Host, reuse: int) -> None:
    deploy(host, "python", "chaos", "chaos", instance_reuse=reuse)
    for _ in range(2):
        r = host.invoke("chaos", b"mixed")
        assert r.outcome is Outcome.OK, r.error
        assert r.logs == ["[stdout] a", "[info] b", "[stderr] c", "[stdout] d"]
    big = host.invoke("chaos", b"big:3000000")  # over the pipe's 1 MiB: read while it is written
    assert big.outcome is Outcome.OK and big.output == b"x" * 3_000_000, big.error
    printed = host.invoke("chaos", b"stdout:50000")  # printed, not announced: one log line
    assert printed.logs == ["[stdout] " + "x" * 50_000]


@needs_componentize_py
def test_a_stdout_pipe_ends_with_its_instance(host: Host) -> None:
    def pipes() -> int:
        return sum(t.name == "fnhost-stdout" for t in threading.enumerate())

    before = pipes()
    deploy(host, "python", "chaos", "chaos", instance_reuse=10)
    assert host.invoke("chaos", b"big:100000").output == b"x" * 100_000
    assert pipes() == before + 1  # the warm instance's
    deploy(host, "python", "hello", "hello")  # fresh instances: a pipe only for a large input, then gone
    assert echo(host, "hello", b"z" * 100_000) == b"z" * 100_000
    host.delete_function("chaos")  # its warm instance is dropped
    wait_for(lambda: pipes() == before, timeout_s=10, what="the pipes' threads to end")


@needs_componentize_py
def test_the_input_directory_is_read_only_and_removed_with_its_instance(host: Host) -> None:
    deploy(host, "python", "chaos", "chaos")
    # a fresh instance with a large input has the directory: the guest cannot write into it
    fs = json.loads(host.invoke("chaos", b"fs" + b" " * 100_000).output)
    # (without the directory, the open would fail with "No such file or directory")
    assert not fs["write"]["ok"] and "No such file" not in fs["write"]["error"], fs
    root = Path(tempfile.gettempdir() if INPUT_ROOT is None else INPUT_ROOT)
    deploy(host, "python", "hello", "hello")
    def ours() -> set[str]:  # other programs share the directory
        return {p.name for p in root.iterdir() if p.name.startswith("fnhost-input-")}

    before = ours()
    assert echo(host, "hello", b"z" * 100_000) == b"z" * 100_000
    assert not ours() - before

    # a warm instance has one from the start (a small first call), read-only too, emptied after
    # every call and removed with the instance
    deploy(host, "python", "chaos", "warm", instance_reuse=10)
    assert host.invoke("warm", b"ok").output == b"ok"
    (directory,) = ours() - before
    fs = json.loads(host.invoke("warm", b"fs" + b" " * 100_000).output)
    assert not fs["write"]["ok"] and "No such file" not in fs["write"]["error"], fs
    assert not list((root / directory).iterdir())  # the input is gone once the call is over
    host.delete_function("warm")
    wait_for(lambda: not ours() - before, timeout_s=10, what="the warm instance's directory to go")
