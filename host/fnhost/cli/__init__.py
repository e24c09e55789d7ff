"""The `fnhost` command: a server (`serve`, `dev`), local tools (`build`, `new`, `keys gen-signing`)
and a client of the HTTP API (`fnhost.Client`) for everything else.

Client commands talk to ``FNHOST_URL`` (default http://127.0.0.1:8080) with the API key in
``FNHOST_TOKEN`` or ``--token`` (``@FILE`` reads it from a file, e.g. ``--token @.fnhost/admin.key``),
in the namespace ``--namespace`` or ``FNHOST_NAMESPACE`` (default: ``default``). Errors print the
server's message and exit with status 1; usage errors exit with 2.

A command group is one module here with a `COMMANDS` list, added below in one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..client import ApiError
from ..errors import FnhostError
from . import apps, audit, blobs, build, completion, db, events, functions, invoke, keys, secrets, serve, shares, usage
from ._common import CliError, epilog, say
from .completion import COMPLETE_VAR

MODULES = [serve, build, apps, functions, invoke, usage, events, blobs, secrets, keys, shares, audit, db, completion]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fnhost")
    except PackageNotFoundError:  # run from a checkout without installing
        return "(not installed)"


@click.group(
    name="fnhost",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=epilog("fnhost serve &\nexport FNHOST_TOKEN=$(cat .fnhost/admin.key)\nfnhost deploy guests/rust/hello"),
)
@click.version_option(_version(), "--version", prog_name="fnhost", message="%(prog)s %(version)s")
def cli() -> None:
    """Serverless WebAssembly functions."""


for _module in MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status (1: an error, reported on stderr as one line; 2: a usage error)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="fnhost",
                          complete_var=COMPLETE_VAR, standalone_mode=False)  # fmt: skip
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        return 130
    except ApiError as e:
        hint = f" (invocation {e.invocation_id}; see `fnhost logs`)" if e.invocation_id else ""
        say(f"fnhost: error: {e}{hint}")
        return 1
    except (CliError, FnhostError) as e:
        say(f"fnhost: error: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


__all__ = ["cli", "main"]
