"""Functions: deploy, list, versions, delete, aliases, rollback and unpin."""

from __future__ import annotations

from pathlib import Path

import click

from ..client import Client
from ..errors import FnhostError
from ._common import CliError, client_options, command, function_name, group, print_json, progress, say, table
from .build import build_bundle


@command(name="deploy", example="fnhost deploy guests/rust/hello\nfnhost deploy hello.zip")
@click.argument("source", metavar="DIR|BUNDLE.zip", type=click.Path(path_type=Path))
@click.option("--name", help="deploy a source directory under this name instead of its manifest's")
@click.option("--sign", metavar="KEYFILE", help="sign the bundle built from DIR")
@client_options
def deploy(api: Client, as_json: bool, source: Path, name: str | None, sign: str | None) -> int:
    """Deploy a source directory (built first) or a bundle zip."""
    from ..control import open_bundle

    if source.is_dir():
        name, data = build_bundle(source, sign=sign, name=name)
    elif source.is_file():
        if sign:
            raise CliError("--sign applies when deploying a source directory; sign zips with `fnhost build`")
        data = source.read_bytes()
        try:
            bundled = open_bundle(data).manifest.name
        except FnhostError as e:
            raise CliError(f"{source}: {e}") from None
        if name and name != bundled:
            raise CliError(f"{source} is a bundle of {bundled!r}; rebuild from source with --name {name}")
        name = bundled
    else:
        raise CliError(f"{source}: no such directory or bundle file")
    with progress(f"uploading {name} ({len(data)} bytes) to {api.url}; the server validates and compiles it"):
        result = api.deploy(name, data)
    if as_json:
        print_json(result)
    elif result["created"]:
        print(f"deployed {name} version {result['version']} (sha256 {result['sha256'][:12]})")
    else:
        print(f"{name} unchanged: version {result['version']} is this same bundle")
    live = result.get("live_version")
    if live is not None and live != result["version"]:
        say(f"warning: {name} live is pinned to version {live}, so version {result['version']} does not serve "
            f"by default; `fnhost unpin {name}` makes live follow the newest version")  # fmt: skip
    return 0


@command(name="list", example="fnhost list --json")
@client_options
def list_(api: Client, as_json: bool) -> int:
    """List the functions of the namespace."""
    functions = api.list_functions()
    if as_json:
        print_json({"functions": functions})
        return 0
    rows = [("NAME", "LATEST", "ALIASES")]
    for f in functions:
        aliases = ", ".join(f"{a['alias']}={a['version']}{'' if a['pinned'] else '*'}" for a in f["aliases"])
        rows.append((f["name"], str(f["latest_version"]), aliases))
    table(rows)
    if functions:
        print("(* follows the newest version)")
    return 0


@command(name="versions", example="fnhost versions hello")
@function_name
@client_options
def versions(api: Client, as_json: bool, name: str) -> int:
    """NAME's versions and their aliases."""
    listed = api.versions(name)
    if as_json:
        print_json({"name": name, "versions": listed})
        return 0
    aliases: dict[int, list[str]] = {}
    for a in api.aliases(name):
        aliases.setdefault(a["version"], []).append(a["alias"])
    rows = [("VERSION", "SHA256", "CREATED BY", "ALIASES")]
    for v in listed:
        rows.append(
            (str(v["version"]), v["sha256"][:12], v["created_by"] or "-", ", ".join(aliases.get(v["version"], [])))
        )
    table(rows)
    return 0


@command(name="delete", example="fnhost delete hello")
@function_name
@client_options
def delete(api: Client, as_json: bool, name: str) -> int:
    """Delete a function with every version."""
    api.delete_function(name)
    if as_json:
        print_json({"name": name, "deleted": True})
    else:
        print(f"deleted {name}: every version, alias and unreferenced artifact")
    return 0


alias = group("alias", "A function's aliases: list, set and rm.", example="fnhost alias set hello prod 3")


@command(alias, "list", example="fnhost alias list hello")
@function_name
@client_options
def alias_list(api: Client, as_json: bool, name: str) -> int:
    """NAME's aliases."""
    aliases = api.aliases(name)
    if as_json:
        print_json({"name": name, "aliases": aliases})
        return 0
    rows = [("ALIAS", "VERSION", "PINNED")]
    for a in aliases:
        rows.append((a["alias"], str(a["version"]), "yes" if a["pinned"] else "no (follows newest)"))
    table(rows)
    return 0


@command(alias, "set", example="fnhost alias set hello prod 3")
@function_name
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@client_options
def alias_set(api: Client, as_json: bool, name: str, alias_name: str, version: int) -> int:
    """Point ALIAS of NAME at VERSION (for live: pins it)."""
    api.set_alias(name, alias_name, version)
    if as_json:
        print_json({"name": name, "alias": alias_name, "version": version})
    else:
        print(f"{name}:{alias_name} -> version {version}")
    return 0


@command(alias, "rm", example="fnhost alias rm hello prod")
@function_name
@click.argument("alias_name", metavar="ALIAS")
@client_options
def alias_rm(api: Client, as_json: bool, name: str, alias_name: str) -> int:
    """Remove ALIAS of NAME; `live` is unpinned instead."""
    if alias_name == "live":
        return _unpin(api, as_json, name)
    api.delete_alias(name, alias_name)
    if as_json:
        print_json({"name": name, "alias": alias_name, "deleted": True})
    else:
        print(f"{name}:{alias_name} removed")
    return 0


@command(name="unpin", example="fnhost unpin hello")
@function_name
@client_options
def unpin(api: Client, as_json: bool, name: str) -> int:
    """Make live follow the newest version again."""
    return _unpin(api, as_json, name)


def _unpin(api: Client, as_json: bool, name: str) -> int:
    version = api.unpin(name)
    if as_json:
        print_json({"name": name, "alias": "live", "version": version, "pinned": False})
    else:
        print(f"{name}:live unpinned: follows the newest version ({version})")
    return 0


@command(name="rollback", example="fnhost rollback hello      # to the version before live\nfnhost rollback hello 2")
@function_name
@click.argument("version", type=int, required=False)
@client_options
def rollback(api: Client, as_json: bool, name: str, version: int | None) -> int:
    """Pin live to VERSION, by default the one before the version live serves."""
    version = api.rollback(name, version)
    if as_json:
        print_json({"name": name, "alias": "live", "version": version, "pinned": True})
    else:
        print(f"{name}:live -> version {version} (pinned; `fnhost unpin {name}` follows deploys again)")
    return 0


COMMANDS = [deploy, list_, versions, delete, alias, unpin, rollback]
