"""The `fnhost` command itself: every command's --help shows an example, completion scripts and
completions are produced, usage errors exit 2. (Commands against a server: test_e2e.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fnhost.cli import cli, main

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


COMMANDS = _commands(cli)


def test_the_tree_has_every_command() -> None:
    for expected in [("serve",), ("dev",), ("deploy",), ("logs",), ("alias", "rm"), ("keys", "gen-signing"),
                     ("db", "copy"), ("completion",), ("rollback",), ("unpin",), ("versions",), ("delete",)]:  # fmt: skip
        assert expected in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="fnhost")
    assert result.exit_code == 0, result.output
    example = result.output.split("Example:\n", 1)[1]
    assert f"fnhost {path[0]}" in example, result.output


def test_usage_errors_exit_2_and_name_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alias", "set", "hello", "prod", "three"]) == 2
    assert "'three' is not a valid integer" in capsys.readouterr().err
    assert main(["nosuch"]) == 2
    assert "No such command 'nosuch'" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fnhost ")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert "_FNHOST_COMPLETE" in script and f"{shell}_complete" in script


def bash_complete(words: str, **env: str) -> list[str]:
    """What `fnhost` answers the bash completion script for the command line `words` (a real
    process, as the shell runs it), with the FNHOST_ variables `env` only."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FNHOST_")}
    environment.update(PYTHONPATH=str(ROOT / "host"), _FNHOST_COMPLETE="bash_complete", COMP_WORDS=words,
                       COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)), **env)  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "fnhost"], env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]  # an empty line: no completions


def test_completion_completes_commands_and_choices() -> None:
    complete = bash_complete
    assert complete("fnhost ro") == ["rollback"]
    assert set(complete("fnhost alias ")) == {"list", "rm", "set"}
    assert complete("fnhost keys create --scope ") == ["admin", "deploy", "invoke"]
