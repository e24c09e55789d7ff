"""C guests: `zig cc` (pip package `ziglang`) targeting wasm32-wasi, built as a reactor.

Every `*.c` file at the top of the guest directory is compiled together with `sdk/c/fnhost.c`,
with `sdk/c` on the include path. Zig's caches go under the fnhost cache directory so that the
first build's wasi-libc compile (30-50 s) is shared across clones.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path

from ..errors import BuildError
from . import default_cache_dir, run_tool, sdk_root

SETUP = "install it with `just setup-c` (pip install ziglang)"
TIMEOUT_S = 600
FLAGS = ["-target", "wasm32-wasi", "-Os", "-s", "-mexec-model=reactor", "-std=c11", "-Wall", "-Wextra"]


def _zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(f"zig is not installed (no Python package `ziglang`); {SETUP}")
    return [sys.executable, "-m", "ziglang"]


@functools.cache
def toolchain_id() -> str:
    done = run_tool([*_zig(), "version"], doing="reporting its version", timeout=120, setup=SETUP, env=_env())
    return f"zig {done.stdout.strip()} {' '.join(FLAGS)}"


def sdk_dir() -> Path:
    return sdk_root() / "c"


def build(src: Path, out: Path) -> None:
    sources = sorted(src.glob("*.c"))
    if not sources:
        raise BuildError(f"{src}: no .c files (a C guest is one or more .c files next to fnhost.toml)")
    cmd = [*_zig(), "cc", *FLAGS, "-I", str(sdk_dir()), "-o", str(out),
           *map(str, sources), str(sdk_dir() / "fnhost.c")]  # fmt: skip
    run_tool(cmd, doing=f"building {src}", timeout=TIMEOUT_S, setup=SETUP, env=_env(), cwd=src)


def _env() -> dict[str, str]:
    cache = default_cache_dir() / "zig-cache"  # wasi-libc is built once into it: keep it across clones
    return dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(cache), ZIG_LOCAL_CACHE_DIR=str(cache))
