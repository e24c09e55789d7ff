"""Apps: `fnhost up` deploys an app file's functions together (docs/apps.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..appfile import APP_FILE, load_app
from ..client import Client
from ..up import up as deploy_app
from ._common import client_options, command, print_json, say


@command(name="up", example="fnhost up\nfnhost up --stage prod --app guests/apps/shop/fnhost.app.toml")
@click.option("app_file", "--app", default=APP_FILE, show_default=True, metavar="FILE", help="the app file")
@click.option("--stage", help="apply this [stage.NAME]'s overrides")
@click.option("--sign", metavar="KEYFILE", type=click.Path(path_type=Path), help="sign every bundle with this key")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="build cache (default ~/.cache/fnhost)")
@client_options
def up(api: Client, as_json: bool, app_file: str, stage: str | None, sign: Path | None, cache_dir: Path | None) -> int:
    """Build an app's functions, upload what changed, then release them all at once.

    Nothing moves until every upload has succeeded; the release moves every alias in one transaction,
    so a failure midway leaves live traffic on the old versions (and says so)."""
    report = deploy_app(load_app(app_file, stage), api, cache_dir=cache_dir, sign=sign, progress=say)
    if as_json:
        print_json({"app": report.app.name, "stage": report.app.stage, "changed": report.changed,
                    "functions": [vars(f) for f in report.functions], "warnings": report.warnings})  # fmt: skip
    else:
        for line in report.lines():
            print(line)
    return 0


COMMANDS = [up]
