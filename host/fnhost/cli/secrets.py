"""Secrets of a namespace: set, rm, list."""

from __future__ import annotations

import sys

import click

from ..client import Client
from ._common import client_options, command, group, print_json

secrets = group("secrets", "Secrets: set, rm, list.", example="echo -n s3cret | fnhost secrets set db-password")


@command(secrets, "set", example="fnhost secrets set db-password      # prompts, or reads stdin")
@click.argument("secret")
@click.argument("value", required=False)
@client_options
def secrets_set(api: Client, as_json: bool, secret: str, value: str | None) -> int:
    """Set a secret (its value from stdin, or a prompt, if omitted)."""
    if value is None:
        if sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"value of secret {secret}: ")
        else:
            value = sys.stdin.read().rstrip("\n")
    api.set_secret(secret, value)
    print_json({"name": secret, "set": True}) if as_json else print(f"secret {secret} set")
    return 0


@command(secrets, "rm", example="fnhost secrets rm db-password")
@click.argument("secret")
@client_options
def secrets_rm(api: Client, as_json: bool, secret: str) -> int:
    """Delete a secret."""
    api.delete_secret(secret)
    print_json({"name": secret, "deleted": True}) if as_json else print(f"secret {secret} deleted")
    return 0


@command(secrets, "list", example="fnhost secrets list -n team-a")
@client_options
def secrets_list(api: Client, as_json: bool) -> int:
    """Secret names (never values)."""
    names = api.secrets()
    if as_json:
        print_json({"secrets": names})
    for name in [] if as_json else names:
        print(name)
    return 0


COMMANDS = [secrets]
