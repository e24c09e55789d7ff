"""Python guests: componentize-py bundles `app.py`, its directory, `sdk/python` (fnhost_sdk) and the
guest's own dependencies with CPython into a component of the `function` world.

Dependencies are those of ``requirements.txt`` and/or ``[project] dependencies`` in the guest's
``pyproject.toml``. pip installs them (`pip install --target`) into a directory of their own,
``<cache>/python-deps/<sha256>/``, keyed by the declared set and the target Python; wheels only, of
a kind that runs in a wasm guest: pure Python (``py3-none-any``) or WASI builds. A package with
native code only is a build error that names it. The build machine's site-packages never reach a
guest: componentize-py adds ``$VIRTUAL_ENV``'s packages (or, without one, the site packages of the
``python3`` on PATH) to the guest, so it always runs with ``VIRTUAL_ENV`` set to the guest's own
dependency directory.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from ..errors import BuildError
from . import SKIP_DIRS, default_cache_dir, require_tool, run_tool, sdk_root, wit_dir

TOOL = "componentize-py"
TIMEOUT_S = 600
PIP_TIMEOUT_S = 600
GUEST_PYTHON = "3.14"  # the CPython inside componentize-py 0.25 (what a wheel must support)
WHEEL_PLATFORMS = ("any", "wasi_0_0_0_wasm32")
NO_WHEEL_RE = re.compile(r"No matching distribution found for (\S+)")


@functools.cache
def toolchain_id() -> str:
    tool = require_tool(TOOL, "Python guests")
    done = run_tool([tool, "--version"], doing="reporting its version", timeout=60, env=_env(None))
    return done.stdout.strip() or TOOL


def sdk_dir() -> Path:
    return sdk_root() / "python"


def build(src: Path, out: Path) -> None:
    if not (src / "app.py").is_file():
        raise BuildError(
            f"{src}: no app.py (a Python guest's entry module is app.py, ending with `WitWorld = app.world()`)"
        )
    tool = require_tool(TOOL, "Python guests")
    site = install_dependencies(src)
    with tempfile.TemporaryDirectory(prefix="fnhost-python-") as tmp:
        # copies: the guest's CPython writes __pycache__ into the directories it imports from
        stage, sdk, empty = Path(tmp, "src"), Path(tmp, "sdk"), Path(tmp, "novenv")
        shutil.copytree(src, stage, ignore=_not_sources)
        shutil.copytree(sdk_dir(), sdk, ignore=_not_sources)
        empty.mkdir()
        paths = ["-p", str(stage), "-p", str(sdk)] + (["-p", str(site)] if site else [])
        cmd = [tool, "-d", str(wit_dir()), "-w", "function", "componentize", *paths, "app", "-o", str(out)]
        run_tool(cmd, doing=f"building {src}", timeout=TIMEOUT_S, env=_env(site or empty), cwd=stage)


def _not_sources(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP_DIRS or n.startswith(".")}


def declared_dependencies(src: Path) -> list[str]:
    """pip arguments for the guest's dependencies: `-r requirements.txt` and pyproject's list."""
    args = ["-r", "requirements.txt"] if (src / "requirements.txt").is_file() else []
    pyproject = src / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError as e:
            raise BuildError(f"{pyproject}: not valid TOML ({e})") from None
        deps = project.get("dependencies", []) if isinstance(project, dict) else []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BuildError(f"{pyproject}: [project] dependencies must be a list of requirement strings")
        args += deps
    return args


def install_dependencies(src: Path) -> Path | None:
    """The directory holding the guest's installed dependencies (None if it declares none)."""
    args = declared_dependencies(src)
    if not args:
        return None
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", GUEST_PYTHON]
    for platform in WHEEL_PLATFORMS:
        flags += ["--platform", platform]
    h = hashlib.sha256("\0".join([*flags, *args]).encode())
    if (src / "requirements.txt").is_file():
        h.update((src / "requirements.txt").read_bytes())
    target = default_cache_dir() / "python-deps" / h.hexdigest()
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".install-") as tmp:
        site = Path(tmp) / "site-packages"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
               "--no-compile", "--target", str(site), *flags, *args]  # fmt: skip
        done = run_tool(cmd, doing=f"installing the dependencies of {src}", timeout=PIP_TIMEOUT_S, cwd=src, check=False)
        if done.returncode != 0:
            missing = NO_WHEEL_RE.search(done.stderr)
            if missing:
                raise BuildError(
                    f"{src}: no wheel of {missing.group(1)} can run in a wasm guest: pip found no pure-Python "
                    f"(py3-none-any) or WASI ({WHEEL_PLATFORMS[1]}) wheel for CPython {GUEST_PYTHON}. A package "
                    "with native code cannot be imported by a Python guest; pick a pure-Python alternative "
                    "(or check the name, and that the package index is reachable)."
                )
            raise BuildError(f"pip failed installing the dependencies of {src}:\n{done.stderr.strip()[-3000:]}")
        site.mkdir(exist_ok=True)
        try:
            os.replace(site, target)
        except OSError:  # another build installed the same set meanwhile
            if not target.is_dir():
                raise
    return target


def _env(venv: Path | None) -> dict[str, str]:
    # componentize-py adds $VIRTUAL_ENV's site-packages to the guest, or without it those of the
    # python3 on PATH: pointing it at the guest's own dependency directory (or an empty one) keeps
    # the build machine's packages out. PYTHONPATH would add the host's own packages. A Rust
    # backtrace would bury the Python traceback that says what is wrong with the guest.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    return env | {"RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}
