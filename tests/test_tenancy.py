"""Tenancy: one test per row of the permission table in docs/security.md ("Tenancy").

Everything goes through the real Starlette app over a real Host (real SQLite, real Wasmtime) with a
real guest: PROBE, a core module that does one host call named by its payload and returns the
call's status and result. The attacker is always the key with the fewest rights.
"""

from __future__ import annotations

import io
import struct
import urllib.parse
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import COMPILED, needs_componentize_py
from test_api import Api, start_api
from wat_guests import module

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The payload is one op byte and a resource name; the output is the host call's i64 status (>= 0 ok,
# -1 denied, -2 not found) and its pending result (the value, or the error message).
#   s NAME: secrets_get(NAME)   k NAME: kv_get(NAME, "k")   K NAME: kv_set(NAME, "k", "v")
#   q NAME: queue_publish(NAME, "m")
PROBE = module(
    """
  (data (i32.const 16) "kvm")
  (func (export "fnhost_handle_event") (param $ptr i32) (param $len i32) (result i64)
    (local $p i32) (local $n i32) (local $op i32) (local $r i64) (local $out i32) (local $rlen i32)
    (local.set $p (local.get $ptr))
    ;; context: three strings, u64 deadline, u32 memory limit; then the u8 event kind
    (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
    (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
    (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
    (local.set $p (i32.add (local.get $p) (i32.const 13)))
    (local.set $n (i32.sub (i32.load (local.get $p)) (i32.const 1)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (local.set $op (i32.load8_u (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (local.set $r (i64.const -6))
    (if (i32.eq (local.get $op) (i32.const 115))
      (then (local.set $r (call $secrets_get (local.get $p) (local.get $n)))))
    (if (i32.eq (local.get $op) (i32.const 107))
      (then (local.set $r (call $kv_get (local.get $p) (local.get $n) (i32.const 16) (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 75))
      (then (local.set $r (call $kv_set (local.get $p) (local.get $n) (i32.const 16) (i32.const 1)
                                        (i32.const 17) (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 113))
      (then (local.set $r (call $queue_publish (local.get $p) (local.get $n) (i32.const 18) (i32.const 1)))))
    (local.set $rlen (call $result_len))
    (local.set $out (call $alloc (i32.add (local.get $rlen) (i32.const 17))))
    (i32.store8 (local.get $out) (i32.const 0))
    (i32.store (i32.add (local.get $out) (i32.const 1)) (i32.add (local.get $rlen) (i32.const 8)))
    (i64.store (i32.add (local.get $out) (i32.const 5)) (local.get $r))
    (drop (call $result_read (i32.add (local.get $out) (i32.const 13))))
    (i32.store (i32.add (i32.add (local.get $out) (i32.const 13)) (local.get $rlen)) (i32.const 0))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $rlen) (i32.const 17)))))
""",
    imports="""
  (import "fnhost" "secrets_get" (func $secrets_get (param i32 i32) (result i64)))
  (import "fnhost" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i64)))
  (import "fnhost" "kv_set" (func $kv_set (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "fnhost" "queue_publish" (func $queue_publish (param i32 i32 i32 i32) (result i64)))
  (import "fnhost" "result_len" (func $result_len (result i32)))
  (import "fnhost" "result_read" (func $result_read (param i32) (result i32)))
""",
)
DENIED, NOT_FOUND = -1, -2


@dataclass
class Tenants:
    """One server with namespaces `default`, `team-a` and `team-b`, and their keys."""

    api: Api
    admin_a: str  # admin of team-a
    admin_b: str  # admin of team-b
    billing_ci: str  # team-a, deploy+invoke on `billing` only, may grant secret:billing-* and kv:billing

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        return self.api.call(method, path, token, **kwargs)

    def key(self, admin: str, **body: Any) -> str:
        r = self.call("POST", "/v1/keys", admin, json={"name": "test", **body})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def deploy(self, namespace: str, manifest: str, token: str) -> Any:
        name = manifest.split('"')[1]
        return self.call("PUT", f"{fn(namespace, name)}", token, content=raw_bundle(manifest))

    def probe(self, namespace: str, name: str, token: str, op: str, resource: str) -> tuple[int, bytes]:
        r = self.call("POST", f"{fn(namespace, name)}/invoke", token, content=(op + resource).encode())
        assert r.status_code == 200, r.text
        (status,) = struct.unpack("<q", r.content[:8])
        return status, r.content[8:]


def raw_bundle(manifest: str) -> bytes:
    """A bundle zipped by hand: `pack_bundle` would refuse a hostile manifest before the server sees it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("fnhost.toml", manifest)
        z.writestr("function.wasm", PROBE)
    return out.getvalue()


def fn(namespace: str, name: str) -> str:
    return f"/v1/functions/{name}" if namespace == "default" else f"/v1/namespaces/{namespace}/functions/{name}"


def ns(namespace: str, rest: str) -> str:
    return f"/v1/namespaces/{namespace}{rest}"


def refused(r: Any, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    message = str(r.json()["error"]["message"])
    for word in words:
        assert word in message, message
    return message


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    api, stop = start_api(tmp_path_factory.mktemp("tenancy") / "data")
    t = Tenants(api, "", "", "")
    t.admin_a = t.key(api.admin, scopes=["admin"], namespace="team-a")
    t.admin_b = t.key(api.admin, scopes=["admin"], namespace="team-b")
    t.billing_ci = t.key(
        t.admin_a,
        scopes=["deploy", "invoke"],
        functions=["billing"],
        may_grant=["secret:billing-*", "kv:billing"],
    )
    for namespace, admin in (("default", api.admin), ("team-a", t.admin_a), ("team-b", t.admin_b)):
        secrets = "/v1/secrets/prod-db" if namespace == "default" else ns(namespace, "/secrets/prod-db")
        assert t.call("PUT", secrets, admin, json={"value": f"{namespace}-password"}).status_code == 200
    assert (
        t.call("PUT", ns("team-a", "/secrets/billing-db"), t.admin_a, json={"value": "billing-pw"}).status_code == 200
    )
    r = t.deploy("team-a", BILLING, t.billing_ci)
    assert r.status_code == 201, r.text
    yield t
    stop()


BILLING = 'name = "billing"\n\n[grants]\nsecrets = ["billing-db"]\nkv = ["billing"]\n'


# --- row: a limited deploy key deploys within what it may grant ---------------------------------------
def test_limited_key_deploys_within_its_grants_and_the_version_records_who_authorized(tenants: Tenants) -> None:
    """(The module's fixture deployed BILLING with billing_ci.)"""
    version = tenants.call("GET", fn("team-a", "billing") + "/versions", tenants.billing_ci).json()["versions"][0]
    assert version["created_by"] == tenants.billing_ci.split("_")[1]
    assert tenants.probe("team-a", "billing", tenants.billing_ci, "s", "billing-db") == (10, b"billing-pw")


# --- row: the attack — a deploy key grants itself prod-db (and kv, queues, triggers) -------------------
@pytest.mark.parametrize(
    ("grants", "field", "permission"),
    [
        ('[grants]\nsecrets = ["prod-db"]\n', "grants.secrets", "secret:prod-db"),
        ('[grants]\nkv = ["victim-bucket"]\n', "grants.kv", "kv:victim-bucket"),
        ('[grants]\nqueues = ["orders"]\n', "grants.queues", "queue:orders"),
        ('[[triggers.queue]]\nqueue = "orders"\n', "triggers.queue[0].queue", "queue:orders"),
        ('[async]\ndead_letter_queue = "payments"\n', "async.dead_letter_queue", "queue:payments"),
        ('[grants]\nsecrets = ["billing-db", "prod-db"]\n', "grants.secrets", "secret:prod-db"),
        ('[grants]\nhttp = ["https://api.example.com"]\n', "grants.http", "http:https://api.example.com"),
        ('[grants]\nhttp = ["http://169.254.169.254"]\n', "grants.http", "http:http://169.254.169.254"),
    ],
)
def test_deploy_granting_beyond_the_key_is_403_audited_and_stores_nothing(
    tenants: Tenants, grants: str, field: str, permission: str
) -> None:
    before = tenants.call("GET", fn("team-a", "billing") + "/versions", tenants.admin_a).json()["versions"]
    manifest = f'name = "billing"\n\n{grants}'
    message = refused(tenants.deploy("team-a", manifest, tenants.billing_ci), 403, field, f"'{permission}'")
    assert "may not grant" in message
    after = tenants.call("GET", fn("team-a", "billing") + "/versions", tenants.admin_a).json()["versions"]
    assert after == before
    entries = tenants.call("GET", "/v1/audit?limit=1000", tenants.api.admin).json()["entries"]
    denied = [e for e in entries if e["action"] == "function.deploy" and e["outcome"] == "forbidden"]
    assert denied and permission in denied[-1]["detail"]["message"]
    assert denied[-1]["actor_key_id"] == tenants.billing_ci.split("_")[1]


def test_the_issue_attack_with_todays_api_a_function_limited_key_cannot_grant_itself_prod_db(tmp_path: Path) -> None:
    """Issue #9 as reported, with only the API from before namespaces: fails on the old code (201,
    and the function reads the secret), 403 now."""
    api, stop = start_api(tmp_path / "data")
    try:
        api.call("PUT", "/v1/secrets/prod-db", api.admin, json={"value": "hunter2"})
        ci = api.key("deploy", "invoke", functions=["billing"])
        r = api.deploy("billing", raw_bundle('name = "billing"\n\n[grants]\nsecrets = ["prod-db"]\n'), ci)
        leaked = api.call("POST", "/v1/functions/billing/invoke", ci, content=b"sprod-db").content
        assert b"hunter2" not in leaked
        assert r.status_code == 403, r.text
        assert api.call("GET", "/v1/functions/billing", api.admin).status_code == 404  # nothing stored
    finally:
        stop()


def test_a_key_that_may_not_grant_deploys_functions_without_grants_only(tenants: Tenants) -> None:
    plain = tenants.key(tenants.admin_a, scopes=["deploy", "invoke"])
    assert tenants.deploy("team-a", 'name = "plain"\n', plain).status_code == 201
    refused(tenants.deploy("team-a", 'name = "plain"\n\n[grants]\nkv = ["x"]\n', plain), 403, "it may grant: nothing")


def test_library_deploy_path_checks_grants_too(tenants: Tenants) -> None:
    """The check lives in Host.deploy, not in the HTTP handler: an embedder passing the key gets it."""
    from fnhost.errors import Forbidden

    principal = _principal(tenants, tenants.billing_ci)
    manifest = {"name": "billing", "grants": {"secrets": ["prod-db"]}}
    with pytest.raises(Forbidden, match="secret:prod-db"):
        tenants.api.host.deploy("team-a/billing", PROBE, manifest, principal=principal)


# --- row: alias changes and rollbacks do not escalate ---------------------------------------------------
def test_pointing_an_alias_at_a_version_someone_else_authorized_needs_its_grants(tenants: Tenants) -> None:
    admin_version = 'name = "billing"\n\n[grants]\nsecrets = ["prod-db"]\n'
    r = tenants.deploy("team-a", admin_version, tenants.admin_a)
    assert r.status_code == 201, r.text
    escalated = r.json()["version"]
    r = tenants.deploy("team-a", BILLING + '\n[env]\nV = "2"\n', tenants.billing_ci)
    assert r.status_code == 201, r.text
    own = r.json()["version"]
    alias = fn("team-a", "billing") + "/aliases/live"
    message = refused(
        tenants.call("PUT", alias, tenants.billing_ci, json={"version": escalated}), 403, "secret:prod-db"
    )
    assert "grants.secrets" in message
    live = {
        a["alias"]: a["version"]
        for a in tenants.call("GET", fn("team-a", "billing"), tenants.admin_a).json()["aliases"]
    }
    assert live["live"] == own
    assert tenants.call("PUT", alias, tenants.billing_ci, json={"version": own}).status_code == 200
    assert tenants.call("PUT", alias, tenants.admin_a, json={"version": escalated}).status_code == 200
    assert tenants.call("PUT", alias, tenants.admin_a, json={"version": own}).status_code == 200
    # Unpinning (DELETE .../aliases/live) moves live to the newest version: the same check applies.
    r = tenants.deploy("team-a", admin_version + '\n[env]\nV = "3"\n', tenants.admin_a)
    assert r.status_code == 201, r.text  # live stays pinned to `own`; the newest has prod-db
    refused(tenants.call("DELETE", alias, tenants.billing_ci), 403, "secret:prod-db")
    refused(tenants.call("DELETE", alias, tenants.admin_b), 404)  # another namespace: not even there
    refused(tenants.call("DELETE", fn("team-a", "billing") + "/aliases/prod", tenants.admin_b), 404)
    live = {a["alias"]: a["version"] for a in tenants.call("GET", fn("team-a", "billing"), tenants.admin_a).json()["aliases"]}
    assert live["live"] == own


# --- row: a function reads only what its manifest grants, resolved in its own namespace -----------------
def test_a_function_reaches_only_its_granted_resources_of_its_own_namespace(tenants: Tenants) -> None:
    manifest = 'name = "reader"\n\n[grants]\nsecrets = ["prod-db"]\nkv = ["counters"]\n'
    assert tenants.deploy("team-b", manifest, tenants.admin_b).status_code == 201
    assert tenants.probe("team-b", "reader", tenants.admin_b, "s", "prod-db") == (15, b"team-b-password")
    assert tenants.probe("team-b", "reader", tenants.admin_b, "K", "counters")[0] == 0
    host = tenants.api.host
    assert host.kv.get("team-b/counters", "k") == b"v" and host.kv.get("counters", "k") is None
    for op, resource in (("s", "billing-db"), ("s", "team-a/prod-db"), ("k", "team-a/billing"), ("q", "orders")):
        status, message = tenants.probe("team-b", "reader", tenants.admin_b, op, resource)
        assert status == DENIED and b"not granted" in message, (op, resource, message)


# --- row: nothing crosses a namespace unless its admin shares it ----------------------------------------
def test_another_namespaces_resource_needs_a_share_even_for_an_admin(tenants: Tenants) -> None:
    for grants in ('secrets = ["team-a/prod-db"]', 'kv = ["team-a/billing"]', 'kv = ["default/victim"]'):
        manifest = f'name = "thief"\n\n[grants]\n{grants}\n'
        refused(tenants.deploy("team-b", manifest, tenants.admin_b), 403, "has not shared it with 'team-b'")
    # not even the operator (an embedder calling Host.deploy without a key) reaches across
    from fnhost.errors import Forbidden

    with pytest.raises(Forbidden, match="has not shared"):
        tenants.api.host.deploy("team-b/thief", PROBE, {"name": "thief", "grants": {"secrets": ["team-a/prod-db"]}})
    trigger = 'name = "thief"\n\n[[triggers.queue]]\nqueue = "team-a/orders"\n'
    refused(tenants.deploy("team-b", trigger, tenants.admin_b), 403, "triggers.queue[0].queue", "team-a")


def test_a_share_is_audited_usable_and_revocable_at_the_next_call(tenants: Tenants) -> None:
    host = tenants.api.host
    host.kv.set("team-a/exports", "k", b"from-a")
    r = tenants.call(
        "POST", ns("team-b", "/shares"), tenants.admin_b, json={"kind": "kv", "name": "x", "with": "team-a"}
    )
    assert r.status_code == 201  # b shares its own bucket: fine
    # only team-a's admin may share team-a's resources
    body = {"kind": "kv", "name": "exports", "with": "team-b"}
    refused(tenants.call("POST", ns("team-a", "/shares"), tenants.admin_b, json=body), 403, "namespace")
    refused(tenants.call("POST", ns("team-a", "/shares"), tenants.billing_ci, json=body), 403)
    r = tenants.call("POST", ns("team-a", "/shares"), tenants.admin_a, json=body)
    assert r.status_code == 201, r.text
    share = r.json()
    assert share["reference"] == "team-a/exports"
    manifest = 'name = "importer"\n\n[grants]\nkv = ["team-a/exports"]\n\n[[triggers.queue]]\nqueue = "team-a/jobs"\n'
    refused(tenants.deploy("team-b", manifest, tenants.admin_b), 403, "team-a/jobs")  # the queue is not shared
    assert (
        tenants.call(
            "POST", ns("team-a", "/shares"), tenants.admin_a, json={"kind": "queue", "name": "jobs", "with": "team-b"}
        ).status_code
        == 201
    )
    refused(tenants.deploy("team-b", manifest, tenants.admin_b), 403, "team-a/jobs-dlq")  # nor its dead-letter queue
    r = tenants.call(
        "POST", ns("team-a", "/shares"), tenants.admin_a, json={"kind": "queue", "name": "jobs-dlq", "with": "team-b"}
    )
    dlq_share = r.json()["id"]
    assert tenants.deploy("team-b", manifest, tenants.admin_b).status_code == 201
    assert tenants.probe("team-b", "importer", tenants.admin_b, "k", "team-a/exports") == (6, b"from-a")
    mappings = {m["queue"] for m in tenants.call("GET", ns("team-b", "/triggers"), tenants.admin_b).json()["queue"]}
    assert mappings == {"team-a/jobs"}

    r = tenants.call("DELETE", ns("team-a", f"/shares/{share['id']}"), tenants.admin_a)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert tenants.probe("team-b", "importer", tenants.admin_b, "k", "team-a/exports")[0] == DENIED
    tenants.call("DELETE", ns("team-a", f"/shares/{dlq_share}"), tenants.admin_a)
    assert tenants.call("GET", ns("team-b", "/triggers"), tenants.admin_b).json()["queue"] == []
    # team-b cannot revoke team-a's shares, nor see them as its own to revoke
    refused(tenants.call("DELETE", ns("team-a", f"/shares/{share['id']}"), tenants.admin_b), 403)
    actions = [
        (e["action"], e["outcome"])
        for e in tenants.call("GET", "/v1/audit?limit=1000", tenants.api.admin).json()["entries"]
        if e["action"].startswith("share.")
    ]
    assert ("share.create", "ok") in actions and ("share.revoke", "ok") in actions


def test_library_queue_mappings_resolve_in_the_functions_namespace(tenants: Tenants) -> None:
    """`Triggers.queue_triggers.create` (library only): the queue is the function's namespace's."""
    from fnhost.errors import Forbidden

    triggers = tenants.api.client.app.state.fnhost.triggers
    assert tenants.deploy("team-b", 'name = "mapped"\n', tenants.admin_b).status_code == 201
    mapping = triggers.queue_triggers.create("team-b/mapped", "inbox")
    assert (mapping.function, mapping.trigger.queue, mapping.trigger.dead_letter_queue) == (
        "team-b/mapped",
        "team-b/inbox",
        "team-b/inbox-dlq",
    )
    with pytest.raises(Forbidden, match="has not shared it with 'team-b'"):
        triggers.queue_triggers.create("team-b/mapped", "team-a/payments")
    triggers.queue_triggers.delete("team-b/mapped", "team-b/inbox")


# --- row: a key never reaches another namespace, nor learns what is in it -------------------------------
def test_a_key_of_one_namespace_cannot_reach_or_see_another(tenants: Tenants) -> None:
    assert tenants.deploy("team-b", 'name = "hidden"\n', tenants.admin_b).status_code == 201
    for method, path in (
        ("GET", fn("team-b", "hidden")),
        ("POST", fn("team-b", "hidden") + "/invoke"),
        ("GET", fn("team-b", "hidden") + "/versions"),
        ("DELETE", fn("team-b", "hidden")),
        ("POST", "/ns/team-b/fn/hidden"),
    ):
        refused(tenants.call(method, path, tenants.admin_a), 404, "does not exist")
        refused(tenants.call(method, path, tenants.billing_ci), 404, "does not exist")
    for method, path in (("GET", ns("team-b", "/secrets")), ("PUT", ns("team-b", "/secrets/prod-db"))):
        refused(tenants.call(method, path, tenants.admin_a, json={"value": "x"}), 403, "belongs to namespace 'team-a'")
    assert tenants.call("GET", ns("team-b", "/functions"), tenants.admin_a).json()["functions"] == []
    assert "team-b" not in tenants.call("GET", ns("team-a", "/functions"), tenants.admin_a).text


def test_a_key_limited_to_one_function_is_not_told_the_others(tenants: Tenants) -> None:
    assert tenants.deploy("team-a", 'name = "payroll"\n', tenants.admin_a).status_code == 201
    listed = [
        f["name"] for f in tenants.call("GET", ns("team-a", "/functions"), tenants.billing_ci).json()["functions"]
    ]
    assert listed == ["team-a/billing"]
    missing = refused(tenants.call("GET", fn("team-a", "nonexistent"), tenants.billing_ci), 404)
    hidden = refused(tenants.call("GET", fn("team-a", "payroll"), tenants.billing_ci), 404)
    assert hidden == missing.replace("nonexistent", "payroll")  # same answer whether it exists or not
    refused(tenants.call("POST", fn("team-a", "payroll") + "/invoke", tenants.billing_ci), 404)
    assert "billing" not in hidden  # nor is it told which functions it may use
    r = tenants.call("POST", fn("team-a", "payroll") + "/invoke", tenants.admin_a)
    invocation = r.headers["x-fnhost-invocation-id"]
    by_id = refused(tenants.call("GET", f"/v1/invocations/{invocation}", tenants.billing_ci), 404)
    assert by_id == f"no invocation {invocation!r}; it may have aged out of retention"  # as for a made-up id
    assert tenants.call("GET", f"/v1/invocations/{invocation}", tenants.admin_a).json()["function"] == "team-a/payroll"
    metrics = tenants.call("GET", "/metrics", tenants.billing_ci).text
    assert 'function="team-a/payroll"' not in metrics and "team-b" not in metrics


# --- row: secrets are readable by no API key, and writable only by an admin of their namespace ---------
def test_secrets_are_admin_only_per_namespace_and_values_never_leave(tenants: Tenants) -> None:
    names = tenants.call("GET", ns("team-a", "/secrets"), tenants.admin_a).json()["secrets"]
    assert names == ["billing-db", "prod-db"]
    assert tenants.call("GET", "/v1/secrets", tenants.api.admin).json()["secrets"] == ["prod-db"]
    refused(tenants.call("GET", ns("team-a", "/secrets"), tenants.billing_ci), 403, "lacks the 'admin' scope")
    refused(tenants.call("PUT", ns("team-a", "/secrets/billing-db"), tenants.billing_ci, json={"value": "x"}), 403)
    assert tenants.call("GET", ns("team-a", "/secrets/prod-db"), tenants.admin_a).status_code == 405  # no read route
    assert "password" not in tenants.call("GET", ns("team-a", "/secrets"), tenants.admin_a).text


# --- row: a namespace admin manages keys of its namespace only; the audit log needs a global admin ------
def test_a_namespace_admin_manages_only_its_own_keys(tenants: Tenants) -> None:
    for body in ({"namespace": "team-b", "scopes": ["invoke"]}, {"namespace": None, "scopes": ["admin"]}):
        refused(tenants.call("POST", "/v1/keys", tenants.admin_a, json={"name": "x", **body}), 403, "team-a")
    own = tenants.key(tenants.admin_a, scopes=["admin"])  # an admin key of team-a, never a global one
    assert tenants.call("GET", ns("team-b", "/secrets"), own).status_code == 403
    listed = tenants.call("GET", "/v1/keys", tenants.admin_a).json()["keys"]
    assert {k["namespace"] for k in listed} == {"team-a"}
    b_key = tenants.admin_b.split("_")[1]
    refused(tenants.call("DELETE", f"/v1/keys/{b_key}", tenants.admin_a), 404)
    refused(tenants.call("GET", "/v1/audit", tenants.admin_a), 403, "global admin")
    assert tenants.call("GET", "/v1/audit/verify", tenants.api.admin).json()["ok"] is True


def test_a_non_admin_key_cannot_mint_keys_or_grant_patterns_to_admins(tenants: Tenants) -> None:
    refused(tenants.call("POST", "/v1/keys", tenants.billing_ci, json={"name": "x", "scopes": ["deploy"]}), 403)
    r = tenants.call(
        "POST", "/v1/keys", tenants.admin_a, json={"name": "x", "scopes": ["admin"], "may_grant": ["kv:*"]}
    )
    refused(r, 400, "may_grant")
    for pattern in ("kv", "db:x", "secret:", "secret:a/b/c", "secret:x\n", "kv:Team-A/x"):
        body = {"name": "x", "scopes": ["deploy"], "may_grant": [pattern]}
        refused(tenants.call("POST", "/v1/keys", tenants.admin_a, json=body), 400, "may_grant")


# --- row: anonymous callers -----------------------------------------------------------------------------
def test_keyless_metrics_list_no_private_names(tenants: Tenants) -> None:
    tenants.probe("team-a", "billing", tenants.billing_ci, "s", "billing-db")
    keyless = tenants.call("GET", "/metrics")
    assert keyless.status_code == 200
    assert "fnhost_invocations_in_flight" in keyless.text
    for private in ('function="', 'queue="', "billing", "payroll", "team-a"):
        assert private not in keyless.text, private
    assert 'function="team-a/billing"' in tenants.call("GET", "/metrics", tenants.api.admin).text
    assert 'function="team-a/billing"' in tenants.call("GET", "/metrics", tenants.billing_ci).text
    assert tenants.call("GET", "/metrics", "fnh_0000000000000000_" + "x" * 43).status_code == 401


def test_failed_authentications_are_aggregated_not_one_audit_row_each(tenants: Tenants) -> None:
    before = len(tenants.call("GET", "/v1/audit?limit=1000", tenants.api.admin).json()["entries"])
    for i in range(200):
        assert tenants.call("GET", "/v1/functions", f"fnh_{i:016x}_" + "x" * 43).status_code == 401
        assert tenants.call("POST", "/v1/keys").status_code == 401
    # reading the audit log writes the summary of what was counted so far (one row per source)
    entries = tenants.call("GET", "/v1/audit?limit=1000", tenants.api.admin).json()["entries"][before:]
    new = [e for e in entries if e["action"].startswith("auth.denied")]
    assert len(new) <= 3, new
    summaries = [e for e in new if e["action"] == "auth.denied.summary"]
    total = sum(e["detail"]["count"] for e in summaries) + sum(1 for e in new if e["action"] == "auth.denied")
    assert total >= 399  # every failure is counted, the first one kept in full
    assert summaries and summaries[0]["target"] == "testclient"
    assert {"GET /v1/functions", "POST /v1/keys"} <= set(summaries[0]["detail"]["paths"])


def test_failed_authentications_keep_memory_bounded_across_sources(tmp_path: Path) -> None:
    from fnhost.control.audit import AuditLog, FailedAuthentications
    from fnhost.stores.database import Database

    log = AuditLog(Database(tmp_path / "audit.db"))
    now = [0.0]
    failed = FailedAuthentications(log, interval_s=60, max_sources=10, clock=lambda: now[0])
    for i in range(1000):
        failed.failed(f"10.0.{i // 256}.{i % 256}", "GET /v1/keys", "unauthorized", None, {})
    assert len(failed._sources) == 11  # ten sources and "(other sources)"
    now[0] = 61.0
    failed.flush()
    rows = log.list(limit=1000)
    assert len(rows) == 12  # ten first failures, the first of "other", one summary of 989 more
    assert rows[-1].detail is not None and rows[-1].detail["count"] == 989
    # one IPv6 host picks any address of its /64: one source
    assert FailedAuthentications.source_of("2001:db8:1:2::1") == FailedAuthentications.source_of("2001:db8:1:2:ffff::9")
    assert FailedAuthentications.source_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert FailedAuthentications.source_of("10.0.0.1") == "10.0.0.1"


# --- row: look-alike names never reach another resource -------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "billing\n",
        "billing ",
        " billing",
        "Billing",
        "b\u0456lling",
        "billing/../payroll",
        "..",
        "team-a",
        "billing%0a",
    ],
)
def test_look_alike_function_names_are_refused_or_not_found(tenants: Tenants, name: str) -> None:
    """Trailing newline or space, case, a Cyrillic i (U+0456), `..`, `/`: never the function `billing`, never another."""
    quoted = urllib.parse.quote(name, safe="")
    for path in (fn("team-a", quoted), fn("team-a", quoted) + "/invoke"):
        r = tenants.call("GET" if path.endswith(quoted) else "POST", path, tenants.billing_ci)
        assert r.status_code in (400, 404), (name, r.status_code, r.text)


@pytest.mark.parametrize(
    "grant",
    [
        "billing-db\n",
        "billing-db ",
        "Billing-db",
        "bill\u0456ng-db",
        "../prod-db",
        "billing-db/../../prod-db",
        "team-a/../prod-db",
    ],
)
def test_look_alike_grants_are_refused_at_deploy(tenants: Tenants, grant: str) -> None:
    manifest = f'name = "billing"\n\n[grants]\nsecrets = ["{grant.encode("unicode_escape").decode()}"]\n'
    r = tenants.deploy("team-a", manifest, tenants.billing_ci)
    assert r.status_code in (400, 403), (grant, r.text)


@pytest.mark.parametrize("namespace", ["Team-a", "team-a\n", "team_a", "..", "t\u0435am-a", "-x"])
def test_look_alike_namespaces_are_refused(tenants: Tenants, namespace: str) -> None:
    r = tenants.call("GET", f"/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/functions", tenants.admin_a)
    assert r.status_code in (400, 403, 404) or r.json() == {"functions": []}, (namespace, r.text)
    assert "billing" not in r.text


# --- row: the default namespace keeps working as before --------------------------------------------------
def test_default_namespace_keeps_todays_paths_and_unqualified_data(tenants: Tenants) -> None:
    admin = tenants.api.admin
    assert tenants.deploy("default", 'name = "legacy"\n\n[grants]\nkv = ["counters"]\n', admin).status_code == 201
    assert tenants.probe("default", "legacy", admin, "K", "counters")[0] == 0
    assert tenants.api.host.kv.get("counters", "k") == b"v"  # stored as before namespaces: unqualified
    assert tenants.call("GET", "/v1/functions/legacy", admin).json()["name"] == "legacy"
    assert [f["name"] for f in tenants.call("GET", "/v1/functions", admin).json()["functions"]] == ["legacy"]
    assert tenants.call("GET", ns("default", "/functions/legacy"), admin).status_code == 200


@pytest.mark.parametrize(
    ("namespace", "written", "stored"),
    [("default", "orders", "orders"), ("team-a", "orders", "team-a/orders"), ("team-a", "team-b/x", "team-b/x"),
     ("team-a", "default/x", "x"), ("default", "team-a/x", "team-a/x")],
)  # fmt: skip
def test_store_names_and_references_are_one_mapping(namespace: str, written: str, stored: str) -> None:
    """What a manifest writes, what the stores keep, and what a guest is shown (queue batches) agree."""
    from fnhost.namespaces import reference, resolve

    assert resolve(namespace, written) == stored
    assert reference(namespace, stored) == written


@needs_componentize_py
def test_a_queue_trigger_of_a_namespace_consumes_its_own_queue_only(tmp_path: Path) -> None:
    """The real trigger loop: `team-x/consumer` mapped to `work` polls `team-x/work`, never `work`."""
    from test_triggers import GUESTS, QUICK, wait_for

    from fnhost import Host
    from fnhost.build import build_guest
    from fnhost.triggers import Triggers

    built = build_guest(GUESTS / "consumer")
    with Host(tmp_path / "data", cache_dir=COMPILED) as host:
        manifest = {**built.manifest.to_dict(), "triggers": {"queue": [{"queue": "work"}]}, **QUICK}
        host.deploy("team-x/consumer", built.wasm_path.read_bytes(), manifest)
        theirs = host.queues.publish("work", b"not for team-x")
        ours = host.queues.publish("team-x/work", b"for team-x")
        triggers = Triggers(host, refresh_interval_s=0.1, queue_idle_max_s=0.05)
        triggers.start()
        try:
            wait_for(lambda: host.queues.depth("team-x/work") == 0, what="team-x/work drained")
        finally:
            assert triggers.stop(timeout_s=10)
        recorded = host.kv.list_keys("team-x/consumer", "msg/")  # its bucket `consumer`, in team-x
        assert [k.split("/")[1] for k in recorded] == [ours]
        assert host.kv.list_keys("consumer", "msg/") == []
        assert [m.id for m in host.queues.peek("work", 10)] == [theirs]
        [mapping] = triggers.queue_mappings()
        assert (mapping.function, mapping.trigger.queue) == ("team-x/consumer", "team-x/work")


def _principal(tenants: Tenants, token: str) -> Any:
    from fnhost.control import ApiKeys

    return tenants.api.host.open_store(ApiKeys).authenticate(f"Bearer {token}")


def test_function_urls_of_a_namespace(tenants: Tenants) -> None:
    """`/ns/{namespace}/fn/{name}`: the namespace's function, never the default one of that name."""
    client: TestClient = tenants.api.client
    assert client.post("/ns/team-a/fn/billing").status_code == 401  # private: needs a key
    assert client.post(
        "/ns/team-a/fn/billing", headers={"Authorization": f"Bearer {tenants.billing_ci}"}
    ).status_code in (
        500,
        502,
    )  # PROBE has no HTTP handler: it ran, as team-a/billing
