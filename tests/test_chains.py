"""The chain-depth guard (`fnhost.chains`, docs/events.md "Loops through several functions"): two
functions that trigger each other through queues or blob triggers, and a function calling its own
function URL through a real server, stop at `max_chain_depth` — nothing lost, the cause named.

Real hosts and core-module guests (tests/wat_guests.py) that cause what they are triggered by; a
limit of 3 keeps each loop to a few invocations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import wat_guests as g
from conftest import COMPILED, wait_for
from test_server import running

from fnhost import Host
from fnhost.chains import CHAIN_DEPTH_HEADER, DEFAULT_MAX_CHAIN_DEPTH, ChainGuard, depth_of_header
from fnhost.errors import LoopDetected
from fnhost.stores.errors import ChainTooDeep
from fnhost.triggers import Triggers

LIMIT = 3
QUICK = {"limits": {"timeout_ms": 1000}}  # lets a visibility timeout of 1 s pass validation


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with Host(tmp_path / "data", cache_dir=COMPILED, max_chain_depth=LIMIT) as h:
        yield h


@pytest.fixture
def triggers(host: Host) -> Iterator[Triggers]:
    t = Triggers(host, refresh_interval_s=0.1, queue_idle_max_s=0.05)
    t.start()
    yield t
    assert t.stop(timeout_s=10), "a trigger worker did not stop within 10 s"


def depths(host: Host, function: str) -> list[tuple[int, str]]:
    """(chain depth, outcome) of `function`'s invocations, oldest first."""
    return sorted((r.chain_depth, r.outcome) for r in host.invocations.list(function, limit=100))


def assert_names_the_cause(error: str | None, depth: int) -> None:
    assert error is not None
    for words in (f"chain depth {depth}", f"limit of {LIMIT}", "--max-chain-depth", "docs/events.md"):
        assert words in error, error


def test_two_functions_publishing_to_each_others_queues_stop_at_the_limit(host: Host, triggers: Triggers) -> None:
    mapping = {"visibility_timeout_s": 1, "max_receive_count": 2}
    host.deploy("a", g.publishes_to("qb"), {"name": "a", "grants": {"queues": ["qb"]},
                "triggers": {"queue": [{"queue": "qa", **mapping}]}, **QUICK})  # fmt: skip
    host.deploy("b", g.publishes_to("qa"), {"name": "b", "grants": {"queues": ["qa"]},
                "triggers": {"queue": [{"queue": "qb", **mapping}]}, **QUICK})  # fmt: skip
    host.queues.publish("qa", b"start")  # from outside: depth 0
    [last] = wait_for(lambda: host.queues.peek("qb-dlq"), what="the last message in qb's dead-letter queue")
    # a at 0 -> qb at 1 -> b at 1 -> qa at 2 -> a at 2 -> qb at 3 -> b at 3 cannot publish (4 > 3), twice
    assert (last.body, last.chain_depth) == (b"ping", LIMIT)
    assert depths(host, "a") == [(0, "ok"), (2, "ok")]
    assert depths(host, "b") == [(1, "ok"), (3, "guest_error"), (3, "guest_error")]
    for record in host.invocations.list("b", limit=2):
        assert_names_the_cause(record.error, LIMIT + 1)
        assert "queue 'qa'" in record.error
    assert host.queues.depth("qa") == host.queues.depth("qb") == 0
    assert host.chains.stopped == {("b", "publish"): 2}


def test_two_functions_writing_blobs_that_trigger_each_other_stop_at_the_limit(
    host: Host, triggers: Triggers
) -> None:
    trigger = {"bucket": "loop", "visibility_timeout_s": 1, "max_receive_count": 2}
    host.deploy("a", g.writes_blob("loop", "b/x"), {"name": "a", "grants": {"blobs": ["loop"]},
                "triggers": {"blob": [{**trigger, "prefix": "a/"}]}, **QUICK})  # fmt: skip
    host.deploy("b", g.writes_blob("loop", "a/x"), {"name": "b", "grants": {"blobs": ["loop"]},
                "triggers": {"blob": [{**trigger, "prefix": "b/"}]}, **QUICK})  # fmt: skip
    dead_letters = host.get_version("b").manifest.blob_triggers[0].dead_letter_queue
    host.blobs.put("loop", "a/start", b"go")  # from outside: depth 0
    [last] = wait_for(lambda: host.queues.peek(dead_letters), what="the last event in b's dead-letter queue")
    assert last.chain_depth == LIMIT
    assert json.loads(last.body)["key"] == "b/x"
    assert depths(host, "a") == [(0, "ok"), (2, "ok")]
    assert depths(host, "b") == [(1, "ok"), (3, "guest_error"), (3, "guest_error")]
    for record in host.invocations.list("b", limit=2):
        assert_names_the_cause(record.error, LIMIT + 1)
        assert "blob loop/a/x, an event for function 'a'" in record.error
    assert host.chains.stopped == {("b", "publish"): 2}


def test_a_write_that_makes_no_event_is_not_refused_at_the_limit(host: Host, triggers: Triggers) -> None:
    """At the limit only what would continue the chain is refused: a put nobody watches goes through."""
    host.deploy("w", g.writes_blob("quiet", "out/x"), {"name": "w", "grants": {"blobs": ["quiet"]}})
    result = host.invoke("w", chain_depth=LIMIT)
    assert result.ok, result.error
    assert host.blobs.get("quiet", "out/x") == b"hi"
    host.deploy("p", g.publishes_to("q"), {"name": "p", "grants": {"queues": ["q"]}})
    refused = host.invoke("p", chain_depth=LIMIT)
    assert refused.outcome.value == "guest_error"
    assert_names_the_cause(refused.error, LIMIT + 1)
    assert host.queues.depth("q") == 0
    assert host.invoke("p", chain_depth=LIMIT - 1).ok


def test_an_invocation_deeper_than_the_limit_is_refused_before_it_runs(host: Host) -> None:
    host.deploy("p", g.publishes_to("q"), {"name": "p", "grants": {"queues": ["q"]}})
    with pytest.raises(LoopDetected) as refused:
        host.invoke("p", chain_depth=LIMIT + 1)
    assert_names_the_cause(str(refused.value), LIMIT + 1)
    assert host.invocations.list("p") == []
    assert host.chains.stopped == {("p", "request"): 1}
    with pytest.raises(ChainTooDeep):  # and a message that deep is never stored
        host.queues.publish("q", b"x", chain_depth=LIMIT + 1)


@pytest.mark.parametrize(
    ("header", "depth"),
    [(None, 0), ("", 0), ("3", 3), ("-1", 0), ("+2", 0), ("1e3", 0), ("٣", 0), ("0x10", 0), ("9" * 40, 0)],
)
def test_an_absent_or_invalid_header_is_depth_0(header: str | None, depth: int) -> None:
    assert depth_of_header(header) == depth


def test_the_default_limit_is_lambdas() -> None:
    assert DEFAULT_MAX_CHAIN_DEPTH == 16
    with pytest.raises(ValueError, match="max_chain_depth"):
        ChainGuard(0)


def test_a_function_calling_its_own_function_url_gets_508_at_the_limit(tmp_path: Path) -> None:
    with running(tmp_path / "data", max_chain_depth=LIMIT, workers=8, function_share=1.0) as (server, token):
        host = server.server.host
        host.deploy(
            "relay",
            g.relays_to(f"{server.url}/fn/relay/"),
            {"name": "relay", "http": {"public": True}, "grants": {"http": [server.url]}},
        )
        response = httpx.get(f"{server.url}/fn/relay/", timeout=30)
        # relay at 0..3 each reached its own URL; the request at depth 4 was answered 508, and each
        # relay passed that status on (the innermost answer is inside the nested bodies)
        assert response.status_code == 508
        assert b'"code":"loop_detected"' in response.content.replace(b" ", b"")
        assert b"--max-chain-depth" in response.content
        assert depths(host, "relay") == [(d, "ok") for d in range(LIMIT + 1)]
        assert host.chains.stopped == {("relay", "request"): 1}

        # the API's invoke reads the header too, and a caller only shortens its own chain by lying
        auth = {"authorization": f"Bearer {token}"}
        deep = httpx.post(f"{server.url}/v1/functions/relay/invoke", headers={**auth, CHAIN_DEPTH_HEADER: "4"})
        assert deep.status_code == 508, deep.text
        assert deep.json()["error"]["code"] == "loop_detected"
        direct = httpx.get(f"{server.url}/fn/relay/", headers={CHAIN_DEPTH_HEADER: str(LIMIT + 1)})
        assert direct.status_code == 508
        assert "--max-chain-depth" in direct.json()["error"]["message"]
        # an async invoke (X-Fnhost-Invocation-Type: Event) runs later at the depth its request claimed
        metrics = httpx.get(f"{server.url}/metrics", headers=auth).text
        assert 'fnhost_chains_stopped_total{function="relay",where="request"} 3.0' in metrics

        # an async invoke (X-Fnhost-Invocation-Type: Event) runs later, at the depth its request claimed
        host.deploy("echo", g.ECHO, {"name": "echo"})
        event = {**auth, "x-fnhost-invocation-type": "Event"}
        too_deep = httpx.post(f"{server.url}/v1/functions/echo/invoke", headers={**event, CHAIN_DEPTH_HEADER: "4"})
        assert too_deep.status_code == 508 and too_deep.json()["error"]["code"] == "loop_detected"
        accepted = httpx.post(f"{server.url}/v1/functions/echo/invoke", headers={**event, CHAIN_DEPTH_HEADER: "2"})
        assert accepted.status_code == 202, accepted.text
        events = server.server.triggers.async_invocations
        wait_for(lambda: events.get(accepted.json()["id"]).status == "succeeded", what="the async invoke")
        assert [(r.trigger, r.chain_depth) for r in host.invocations.list("echo", limit=10)] == [("async", 2)]
        assert host.chains.stopped[("echo", "request")] == 1
