"""`fnhost completion SHELL`: the shell completion script (click's), to source from the shell's rc file."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from ._common import command

COMPLETE_VAR = "_FNHOST_COMPLETE"
SHELLS = ["bash", "zsh", "fish"]


@command(
    name="completion",
    example='eval "$(fnhost completion bash)"      # in ~/.bashrc\n'
    "fnhost completion fish > ~/.config/fish/completions/fnhost.fish",
)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> int:
    """Print the completion script for SHELL (commands, options, choices)."""
    root = ctx.find_root().command
    complete = get_completion_class(shell)
    assert complete is not None  # every name in SHELLS is one of click's
    print(complete(root, {}, "fnhost", COMPLETE_VAR).source())
    return 0


COMMANDS = [completion]
