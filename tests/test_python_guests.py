"""The example Python guests, built with `fnhost.build` and run by a real `Host`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import needs_componentize_py

from fnhost import Host, Outcome
from fnhost.build import build_guest

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "python"
pytestmark = [
    pytest.mark.slow,
    needs_componentize_py,
]


def deploy(host: Host, guest: str) -> None:
    built = build_guest(GUESTS / guest)
    host.deploy(guest, built.wasm_path.read_bytes(), built.manifest)


def test_hello(host: Host) -> None:
    deploy(host, "hello")
    r = host.invoke_http("hello", "GET", "/hello?name=x", [], b"")
    assert r.outcome is Outcome.OK and r.response is not None
    assert (r.response.status, json.loads(r.response.body)) == (200, {"message": "Hello, x!"})

    r = host.invoke_http("hello", "PUT", "/a/b?q=1&q=2", [("user-agent", "pytest")], b"12345")
    assert r.response is not None and json.loads(r.response.body) == {
        "method": "PUT", "path": "/a/b", "query": {"q": "1"}, "user_agent": "pytest", "body_length": 5,
        "function": "hello", "version": "1",
    }  # fmt: skip

    body = bytes(range(256)) * 1024
    r = host.invoke_http("hello", "POST", "/echo", [], body)
    assert r.response is not None and (r.response.status, r.response.body) == (200, body)

    assert json.loads(host.invoke("hello", b'{"name": "x"}').output) == {"message": "Hello, x!"}
    assert host.invoke("hello", b"\x00\x01 not json").output == b"\x00\x01 not json"


def test_counter_counts_and_is_denied_other_buckets(host: Host) -> None:
    deploy(host, "counter")
    for n in (1, 2):
        r = host.invoke_http("counter", "POST", "/incr/a", [], b"")
        assert r.response is not None and json.loads(r.response.body) == {"key": "a", "value": n}
    r = host.invoke_http("counter", "GET", "/get/a", [], b"")
    assert r.response is not None and json.loads(r.response.body) == {"key": "a", "value": 2}
    assert json.loads(host.invoke("counter", b'{"op": "incr", "key": "a"}').output)["value"] == 3
    assert json.loads(host.invoke("counter", b'{"op": "get", "key": "unset"}').output)["value"] == 0
    assert json.loads(host.invoke("counter", b'{"op": "list"}').output) == {"keys": ["a"]}

    r = host.invoke_http("counter", "GET", "/bucket/other/k", [], b"")
    assert r.outcome is Outcome.OK and r.response is not None and r.response.status == 403
    assert json.loads(r.response.body)["error"] == "denied"
    out = json.loads(host.invoke("counter", b'{"op": "get", "bucket": "other", "key": "k"}').output)
    assert out["error"] == "denied" and "other" in out["message"]


def test_notify_publishes_and_never_returns_the_secret(host: Host) -> None:
    deploy(host, "notify")
    host.secrets.set("api-token", "tok-123456")
    r = host.invoke("notify", b'{"text": "hi"}')
    assert r.outcome is Outcome.OK, r.error
    out = json.loads(r.output)
    assert out["token_length"] == 10 and b"tok-123456" not in r.output
    [message] = host.queues.receive("notifications")
    assert (message.id, message.body) == (out["message_id"], b'{"text": "hi"}')

    secret = json.loads(host.invoke("notify", b'{"op": "secret", "name": "other"}').output)
    published = json.loads(host.invoke("notify", b'{"op": "publish", "queue": "other", "body": "x"}').output)
    assert secret["error"] == published["error"] == "denied"


@pytest.mark.parametrize(
    ("command", "outcome"),
    [
        ("ok", Outcome.OK),
        ("spin:100000", Outcome.OK),
        ("loop", Outcome.FUEL_EXHAUSTED),
        ("sleep:3500", Outcome.TIMEOUT),
        ("alloc:16", Outcome.OK),
        ("alloc:200", Outcome.MEMORY_LIMIT),
        ("recurse", Outcome.GUEST_TRAP),
        ("trap", Outcome.GUEST_TRAP),
        ("exit:3", Outcome.GUEST_TRAP),
        ("raise", Outcome.GUEST_ERROR),
    ],
)
def test_chaos_outcomes(host: Host, command: str, outcome: Outcome) -> None:
    deploy(host, "chaos")
    r = host.invoke("chaos", command.encode())
    assert r.outcome is outcome, r.error
    if outcome is Outcome.GUEST_ERROR:
        assert r.error == "RuntimeError: chaos: raised on purpose (at app.py:88)"


def test_chaos_sandbox(host: Host) -> None:
    deploy(host, "chaos")
    env = json.loads(host.invoke("chaos", b"env").output)
    assert env == {"CHAOS_MODE": "on", "GREETING": "hello from the manifest"}
    fs = json.loads(host.invoke("chaos", b"fs").output)
    assert not fs["listdir"]["ok"] and not fs["passwd"]["ok"] and not fs["write"]["ok"]


def test_chaos_stdout_is_captured(host: Host) -> None:
    deploy(host, "chaos")
    r = host.invoke("chaos", b"stdout:100")
    assert r.outcome is Outcome.OK, r.error
    assert "x" * 100 in "".join(r.logs)
    # one 100 KB write: WASI takes 8,192 bytes per write, and the tail used to be dropped
    r = host.invoke("chaos", b"stdout:100000")
    assert r.outcome is Outcome.OK, r.error
    assert "".join(r.logs).count("x") == 100_000


def test_sleeping_python_guest_stops_at_its_timeout(host: Host) -> None:
    built = build_guest(GUESTS / "chaos")
    host.deploy("chaos", built.wasm_path.read_bytes(), {**built.manifest.to_dict(), "limits": {"timeout_ms": 300}})
    t0 = time.monotonic()
    r = host.invoke("chaos", b"sleep:60000")
    assert r.outcome is Outcome.TIMEOUT, r.error
    assert time.monotonic() - t0 < 0.8
    assert host.invoke("chaos", b"sleep:20").outcome is Outcome.OK


def test_dates_imports_its_requirement_and_a_failure_names_the_line(host: Host) -> None:
    deploy(host, "dates")
    r = host.invoke("dates", b"1 Dec 2026 15:04")
    assert (r.outcome, json.loads(r.output)) == (Outcome.OK, {"iso": "2026-12-01T15:04:00", "weekday": "Tuesday"})
    r = host.invoke("dates", b"next tuesday 3pm")
    assert r.outcome is Outcome.GUEST_ERROR
    assert (r.error or "").startswith("ParserError: Unknown string format: next tuesday 3pm (at dateutil/parser/")
    assert '[stderr]   File "/0/app.py", line 19, in on_event' in r.logs, r.logs  # the traceback, in the logs
    assert r.logs[-1] == "[stderr] dateutil.parser._parser.ParserError: Unknown string format: next tuesday 3pm"


def test_an_unset_secret_names_itself_and_the_command_that_sets_it(host: Host) -> None:
    deploy(host, "notify")
    r = host.invoke("notify", b'{"op": "secret", "name": "api-token"}')
    hint = "secret 'api-token' is granted but not set; set it with `fnhost secrets set api-token`"
    assert r.outcome is Outcome.OK and json.loads(r.output) == {"error": "not-found", "message": hint}
    assert f"[fnhost] {hint}" in r.logs
