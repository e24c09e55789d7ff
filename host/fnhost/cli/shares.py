"""Sharing one kv bucket, secret or queue with another namespace."""

from __future__ import annotations

import click

from ..client import Client
from ._common import client_options, command, group, print_json, table, utc

shares = group(
    "shares",
    "Share a resource with another namespace.",
    example="fnhost shares create kv cache --with team-b -n team-a",
)


@command(shares, "create", example="fnhost shares create kv cache --with team-b -n team-a")
@click.argument("kind", type=click.Choice(["kv", "secret", "queue"]))
@click.argument("resource")
@click.option("with_", "--with", required=True, metavar="NAMESPACE", help="the namespace to share with")
@client_options
def shares_create(api: Client, as_json: bool, kind: str, resource: str, with_: str) -> int:
    """Share RESOURCE (its name in --namespace) with another namespace."""
    share = api.create_share(kind, resource, with_)
    if as_json:
        print_json(share)
    else:
        print(f"shared {share['kind']} {share['reference']} with {share['grantee']} (share {share['id']})")
    return 0


@command(shares, "list", example="fnhost shares list -n team-a")
@client_options
def shares_list(api: Client, as_json: bool) -> int:
    """Shares --namespace made or received."""
    listed = api.shares()
    if as_json:
        print_json({"shares": listed})
        return 0
    rows = [("ID", "KIND", "RESOURCE", "WITH", "CREATED BY", "REVOKED")]
    for s in listed:
        rows.append((s["id"], s["kind"], f"{s['owner']}/{s['name']}", s["grantee"], s["created_by"] or "-",
                     utc(s["revoked_at"])))  # fmt: skip
    table(rows)
    return 0


@command(shares, "revoke", example="fnhost shares revoke sh_1a2b...")
@click.argument("share_id")
@client_options
def shares_revoke(api: Client, as_json: bool, share_id: str) -> int:
    """Revoke a share (applies at the next call)."""
    revoked = api.revoke_share(share_id)
    print_json(revoked) if as_json else print(f"share {share_id} revoked")
    return 0


COMMANDS = [shares]
