"""Two functions never see each other's data: buckets and secrets reach a function only through its
own grants, with the same code deployed under different manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fnhost import Host, Outcome
from fnhost.build import build_guest

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "python"
pytestmark = pytest.mark.slow


def deploy_as(host: Host, guest: str, name: str, grants: dict[str, list[str]]) -> None:
    built = build_guest(GUESTS / guest)
    manifest = {**built.manifest.to_dict(), "name": name, "grants": grants}
    host.deploy(name, built.wasm_path.read_bytes(), manifest)


def event(host: Host, name: str, payload: dict[str, object]) -> dict[str, object]:
    r = host.invoke(name, json.dumps(payload).encode())
    assert r.outcome in (Outcome.OK, Outcome.DENIED), (r.outcome, r.error)
    return json.loads(r.output) if r.output else {"outcome": r.outcome.value, "error": r.error}


def test_buckets_are_private_unless_granted_to_both(host: Host) -> None:
    deploy_as(host, "counter", "alice", {"kv": ["alice-data", "shared"]})
    deploy_as(host, "counter", "bob", {"kv": ["bob-data", "shared"]})

    assert event(host, "alice", {"op": "incr", "key": "k", "bucket": "alice-data"})["value"] == 1
    assert event(host, "alice", {"op": "incr", "key": "k", "bucket": "alice-data"})["value"] == 2
    # bob runs the same code but cannot reach alice's bucket, not even to read it
    denied = event(host, "bob", {"op": "get", "key": "k", "bucket": "alice-data"})
    assert "denied" in json.dumps(denied), denied
    assert "alice-data" in json.dumps(denied)
    assert event(host, "bob", {"op": "incr", "key": "k", "bucket": "bob-data"})["value"] == 1
    # a bucket granted to both is shared, explicitly
    event(host, "alice", {"op": "incr", "key": "s", "bucket": "shared"})
    assert event(host, "bob", {"op": "incr", "key": "s", "bucket": "shared"})["value"] == 2
    # nothing leaked into the store under another name
    assert host.kv.get("alice-data", "k") == b"2"
    assert host.kv.get("bob-data", "k") == b"1"


def test_secrets_reach_only_granted_functions(host: Host) -> None:
    host.secrets.set("alice-token", "s3cr3t-alice")
    host.secrets.set("bob-token", "s3cr3t-bob")
    deploy_as(host, "notify", "alice", {"secrets": ["alice-token"]})
    deploy_as(host, "notify", "bob", {"secrets": ["bob-token"]})

    mine = event(host, "alice", {"op": "secret", "name": "alice-token"})
    assert mine["length"] == len("s3cr3t-alice")
    theirs = host.invoke("alice", json.dumps({"op": "secret", "name": "bob-token"}).encode())
    text = theirs.output.decode() + (theirs.error or "")
    assert "denied" in text and "bob-token" in text
    assert "s3cr3t-bob" not in text
    r = host.invocations.get(theirs.invocation_id)
    assert r is not None and "s3cr3t" not in r.logs + (r.error or "")


def test_queue_publish_needs_a_grant(host: Host) -> None:
    deploy_as(host, "notify", "pub", {"queues": ["allowed"]})
    ok = event(host, "pub", {"op": "publish", "queue": "allowed", "body": "hi"})
    assert "message_id" in ok, ok
    denied = event(host, "pub", {"op": "publish", "queue": "other", "body": "hi"})
    assert "denied" in json.dumps(denied)
    assert host.queues.depth("allowed") == 1
    assert host.queues.depth("other") == 0
    (message,) = host.queues.receive("allowed")
    assert message.body == b"hi"
