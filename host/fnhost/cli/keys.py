"""API keys (create, list, revoke) and bundle-signing keys (gen-signing, local)."""

from __future__ import annotations

from pathlib import Path

import click

from ..client import Client
from ._common import CliError, client_options, command, group, print_json, say, table, utc

keys = group(
    "keys", "API keys and signing keys.", example="fnhost keys create --name ci --scope deploy --function hello"
)


@command(
    keys, "create", example="fnhost keys create --name ci --scope deploy --function hello --may-grant 'kv:hello-*'"
)
@click.option("--name", required=True, help="who or what uses the key")
@click.option("--scope", multiple=True, required=True, type=click.Choice(["admin", "deploy", "invoke"]))
@click.option("--function", "functions", multiple=True, help="limit deploy/invoke to this function (repeatable)")
@click.option(
    "--may-grant",
    multiple=True,
    metavar="KIND:NAME",
    help="what its deploys may grant: kv:, secret: or queue: and a name, * and ? allowed (repeatable); "
    "admins may grant anything of their namespace",
)
@client_options
def keys_create(
    api: Client,
    as_json: bool,
    name: str,
    scope: tuple[str, ...],
    functions: tuple[str, ...],
    may_grant: tuple[str, ...],
) -> int:
    """Create an API key in --namespace (global without one); prints its token, shown this once."""
    key = api.create_key(name, scope, functions=functions or None, may_grant=may_grant or None)
    if as_json:
        print_json(key)
        return 0
    where = f"namespace {key['namespace']}" if key["namespace"] else "global"
    say(f"created key {key['key_id']} ({', '.join(key['scopes'])}; {where}); the token is shown this once:")
    print(key["token"])
    return 0


@command(keys, "list", example="fnhost keys list --json")
@client_options
def keys_list(api: Client, as_json: bool) -> int:
    """API keys (never their tokens)."""
    listed = api.keys()
    if as_json:
        print_json({"keys": listed})
        return 0
    rows = [("ID", "NAME", "NAMESPACE", "SCOPES", "FUNCTIONS", "MAY GRANT", "CREATED", "REVOKED")]
    for k in listed:
        functions = ",".join(k["functions"]) if k["functions"] is not None else "*"
        rows.append((k["key_id"], k["name"], k["namespace"] or "(global)", ",".join(k["scopes"]), functions,
                     ",".join(k["may_grant"]) or "-", utc(k["created_at"]), utc(k["revoked_at"])))  # fmt: skip
    table(rows)
    return 0


@command(keys, "revoke", example="fnhost keys revoke k_3f2a...")
@click.argument("key_id")
@client_options
def keys_revoke(api: Client, as_json: bool, key_id: str) -> int:
    """Revoke an API key (at once, on every node)."""
    revoked = api.revoke_key(key_id)
    print_json(revoked) if as_json else print(f"key {key_id} revoked")
    return 0


@command(keys, "gen-signing", example="fnhost keys gen-signing -o release.key")
@click.option("-o", "--output", default="signing.key", show_default=True, help="private key file")
def keys_gen_signing(output: str) -> int:
    """Make an Ed25519 bundle-signing key pair (local; no server)."""
    from ..control import generate_signing_key, save_signing_key

    private_pem, public_key = generate_signing_key()
    path = Path(output)
    try:
        save_signing_key(path, private_pem)
        pub = path.with_name(path.name + ".pub")
        pub.write_text(public_key + "\n", encoding="ascii")
    except FileExistsError as e:
        raise CliError(str(e)) from None
    print(f"private key: {path} (mode 0600; sign with `fnhost build DIR --sign {path}`)")
    print(f"public key:  {pub} (trust it with `fnhost serve --trusted-key {pub}`)")
    print(public_key)
    return 0


COMMANDS = [keys]
