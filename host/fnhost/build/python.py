"""Python guests: componentize-py bundles `app.py`, its directory and `sdk/python` (fnhost_sdk)
with CPython into a component of the `function` world."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from ..errors import BuildError
from . import require_tool, sdk_root, stderr_tail, wit_dir

TOOL = "componentize-py"
TIMEOUT_S = 600


@functools.cache
def toolchain_id() -> str:
    tool = require_tool(TOOL, "Python guests")
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, env=_env(), timeout=60)
    if done.returncode != 0:
        raise BuildError(f"`{TOOL} --version` failed: {stderr_tail(done.stderr)}")
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
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=src, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{TOOL} did not finish within {TIMEOUT_S} s building {src}") from None
    if done.returncode != 0:
        raise BuildError(f"{TOOL} failed to build {src}:\n{stderr_tail(done.stderr + done.stdout)}")


def _env() -> dict[str, str]:
    # An active virtualenv would add its site-packages to the guest, and PYTHONPATH the host's own
    # packages: the guest gets only its directory and the SDK (`-p`). A Rust backtrace would bury
    # the Python traceback that says what is wrong with the guest.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {"RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}
