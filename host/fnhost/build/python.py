"""Python guests: componentize-py bundles `app.py`, its directory and `sdk/python` (fnhost_sdk)
with CPython into a component of the `function` world."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import BuildError
from . import require_tool, run_tool, sdk_root, wit_dir

TOOL = "componentize-py"
TIMEOUT_S = 600


@functools.cache
def toolchain_id() -> str:
    tool = require_tool(TOOL, "Python guests")
    done = run_tool([tool, "--version"], doing="reporting its version", timeout=60, env=_env())
    return done.stdout.strip() or TOOL


def sdk_dir() -> Path:
    return sdk_root() / "python"


def build(src: Path, out: Path) -> None:
    if not (src / "app.py").is_file():
        raise BuildError(
            f"{src}: no app.py (a Python guest's entry module is app.py, ending with `WitWorld = app.world()`)"
        )
    tool = require_tool(TOOL, "Python guests")
    cmd = [tool, "-d", str(wit_dir()), "-w", "function", "componentize",
           "-p", str(src), "-p", str(sdk_dir()), "app", "-o", str(out)]  # fmt: skip
    run_tool(cmd, doing=f"building {src}", timeout=TIMEOUT_S, env=_env(), cwd=src)


def _env() -> dict[str, str]:
    # An active virtualenv would add its site-packages to the guest, and PYTHONPATH the host's own
    # packages: the guest gets only its directory and the SDK (`-p`). A Rust backtrace would bury
    # the Python traceback that says what is wrong with the guest.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {"RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}
