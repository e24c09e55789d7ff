"""C guests: `zig cc` (pip package `ziglang`) targeting wasm32-wasi, built as a reactor.

Every `*.c` file at the top of the guest directory is compiled together with `sdk/c/fnhost.c`,
with `sdk/c` on the include path. Zig's caches go under the fnhost cache directory so that the
first build's wasi-libc compile (30-50 s) is shared across clones.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError
from . import default_cache_dir, sdk_root, stderr_tail

SETUP = "install it with `just setup-c` (pip install ziglang)"
TIMEOUT_S = 600
FLAGS = ["-target", "wasm32-wasi", "-Os", "-s", "-mexec-model=reactor", "-std=c11", "-Wall", "-Wextra"]


def _zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(f"zig is not installed (no Python package `ziglang`); {SETUP}")
    return [sys.executable, "-m", "ziglang"]


@functools.cache
def toolchain_id() -> str:
    done = _run([*_zig(), "version"], timeout=120)
    if done.returncode != 0:
        raise BuildError(f"`zig version` failed: {stderr_tail(done.stderr)}; {SETUP}")
    return f"zig {done.stdout.strip()} {' '.join(FLAGS)}"


def sdk_dir() -> Path:
    return sdk_root() / "c"


def build(src: Path, out: Path) -> None:
    sources = sorted(src.glob("*.c"))
    if not sources:
        raise BuildError(f"{src}: no .c files (a C guest is one or more .c files next to fnhost.toml)")
    cmd = [*_zig(), "cc", *FLAGS, "-I", str(sdk_dir()), "-o", str(out),
           *map(str, sources), str(sdk_dir() / "fnhost.c")]  # fmt: skip
    try:
        done = _run(cmd, timeout=TIMEOUT_S, cwd=src)
    except subprocess.TimeoutExpired:
        raise BuildError(f"zig cc did not finish within {TIMEOUT_S} s building {src}") from None
    if done.returncode != 0:
        raise BuildError(f"zig cc failed to build {src}:\n{stderr_tail(done.stderr + done.stdout)}")


def _run(cmd: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cache = default_cache_dir() / "zig-cache"
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(cache), ZIG_LOCAL_CACHE_DIR=str(cache))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
