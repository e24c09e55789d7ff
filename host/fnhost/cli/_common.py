"""What every command module shares: output helpers, the client options, and the `command` decorator.

A client command takes `@client_options` and receives `api` (an `fnhost.Client` configured from
--url/--token/--namespace or FNHOST_URL/FNHOST_TOKEN/FNHOST_NAMESPACE) and `as_json` (--json).
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from ..client import DEFAULT_URL, Client
from ..errors import FnhostError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_DATA_DIR = ".fnhost"


class CliError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(message: str) -> Iterator[None]:
    """Announce a long step; on a terminal, count the seconds until it ends."""
    start = time.monotonic()
    say(f"{message} ...")
    done = threading.Event()
    ticker = None
    if sys.stderr.isatty():

        def tick() -> None:
            while not done.wait(1.0):
                print(f"\r  {time.monotonic() - start:.0f}s", end="", file=sys.stderr, flush=True)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    try:
        yield
    finally:
        done.set()
        if ticker is not None:
            ticker.join()
            print("\r", end="", file=sys.stderr)
        say(f"  ... {time.monotonic() - start:.1f}s")


def command(
    group: click.Group | None = None, name: str | None = None, *, example: str, **kwargs: Any
) -> Callable[[F], click.Command]:
    """A click command whose --help ends with `example` (one or more lines of shell)."""
    make = group.command if group is not None else click.command
    return make(name, epilog=epilog(example), **kwargs)


def group(name: str, help: str, *, example: str) -> click.Group:
    return click.Group(name, help=help, epilog=epilog(example))


def epilog(example: str) -> str:
    """The end of a command's --help: its example, kept as written (click's \\b: no rewrapping)."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in example.splitlines())


def client_options(fn: F) -> F:
    """--url, --token, -n/--namespace and --json; the command gets `api` and `as_json`."""

    @click.option("--url", help=f"the server (default: $FNHOST_URL or {DEFAULT_URL})")
    @click.option("--token", help="API key, or @FILE holding it (default: $FNHOST_TOKEN)")
    @click.option("-n", "--namespace", help="the namespace to work in (default: $FNHOST_NAMESPACE or default)")
    @click.option("as_json", "--json", is_flag=True, help="print the API's JSON instead of a table or message")
    @functools.wraps(fn)
    def wrapper(url: str | None, token: str | None, namespace: str | None, as_json: bool, **kwargs: Any) -> Any:
        with Client.from_env(url, token, namespace) as api:
            return fn(api=api, as_json=as_json, **kwargs)

    return wrapper  # type: ignore[return-value]


def complete_functions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Tab completion of a function name: the server's, asked with the options given so far (or the
    environment's); nothing, quietly, when it cannot be asked within a second or two."""
    given = ctx.params
    try:
        quick = {"timeout_s": 2.0, "read_timeout_s": 2.0}
        with Client.from_env(given.get("url"), given.get("token"), given.get("namespace"), **quick) as api:
            names = [f["name"] for f in api.list_functions()]
    except FnhostError:
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


function_name = click.argument("name", shell_complete=complete_functions)
"""The NAME argument of a command about one function."""


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def utc(seconds: float | None) -> str:
    return "-" if not seconds else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def read_bytes(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"{option} @{path}: {e.strerror}") from None


def read_text(path: str, option: str) -> str:
    return read_bytes(path, option).decode("utf-8")


def data_arg(value: str, option: str) -> bytes:
    """A payload given as text, @FILE, or @- for stdin."""
    if value == "@-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        return read_bytes(value[1:], option)
    return value.encode("utf-8")


POSITIVE = click.IntRange(min=1)
FRACTION = click.FloatRange(min=0, max=1, min_open=True)
