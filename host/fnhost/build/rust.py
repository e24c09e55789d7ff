"""Rust guests: the Debian rustc 1.63 with the wasm32-wasi std, called directly (no cargo).

crates.io is out of reach and the newer cargo on PATH cannot drive rustc 1.63, so a guest is one
crate (`src/lib.rs`, as in its Cargo.toml) whose only dependency is the fnhost SDK: the SDK is
compiled to an rlib, then the guest to a `cdylib` linked against it.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

from ..errors import BuildError
from . import run_tool, sdk_root

TARGET = "wasm32-wasi"
SETUP = "install it with `just setup-rust` (apt-get install rustc libstd-rust-dev-wasm32 lld-14)"
TIMEOUT_S = 600
# Size-optimised, symbols stripped, whole-program LTO across the SDK rlib (73 KB vs 87 KB for hello).
CODEGEN = ["-C", "opt-level=s", "-C", "strip=symbols", "-C", "lto", "-C", "codegen-units=1"]


@functools.cache
def rustc() -> str:
    """A rustc that has the wasm32-wasi std: `$FNHOST_RUSTC`, Debian's /usr/bin/rustc, or PATH's."""
    candidates = [os.environ.get("FNHOST_RUSTC"), "/usr/bin/rustc", shutil.which("rustc")]
    for candidate in filter(None, candidates):
        if not Path(candidate).is_file():
            continue
        done = run_tool(
            [candidate, "--print", "target-libdir", "--target", TARGET],
            doing="looking for its wasm32-wasi std",
            timeout=60,
            setup=SETUP,
            check=False,
        )
        libdir = Path(done.stdout.strip())
        if done.returncode == 0 and any(libdir.glob("libstd-*.rlib")):
            return candidate
    tried = ", ".join(filter(None, candidates))
    raise BuildError(f"no rustc with the {TARGET} standard library found (tried {tried}); {SETUP}")


@functools.cache
def toolchain_id() -> str:
    done = run_tool([rustc(), "--version"], doing="reporting its version", timeout=60, setup=SETUP)
    return f"{done.stdout.strip()} {TARGET} {' '.join(CODEGEN)} relative-paths"


def sdk_dir() -> Path:
    return sdk_root() / "rust"


def build(src: Path, out: Path) -> None:
    crate_name, edition, entry = _crate(src)
    with tempfile.TemporaryDirectory(prefix="fnhost-rust-") as tmp:
        rlib = Path(tmp) / "libfnhost.rlib"
        _rustc(["--crate-type", "rlib", "--crate-name", "fnhost", "--edition", "2021",
                "-o", str(rlib), str(sdk_dir() / "src" / "lib.rs")], what="the fnhost SDK")  # fmt: skip
        _rustc(["--crate-type", "cdylib", "--crate-name", crate_name, "--edition", edition,
                "--extern", f"fnhost={rlib}", "-L", f"dependency={tmp}",
                # a panic names src/lib.rs:12:5, and the wasm does not depend on where the checkout is
                f"--remap-path-prefix={src}/=",
                "-o", str(out), str(entry)], what=str(src), cwd=src)  # fmt: skip


def _crate(src: Path) -> tuple[str, str, Path]:
    """The crate name, edition and entry file from the guest's Cargo.toml."""
    cargo = src / "Cargo.toml"
    if not cargo.is_file():
        raise BuildError(f"{src}: no Cargo.toml (a Rust guest is a cdylib crate depending on sdk/rust)")
    try:
        data = tomllib.loads(cargo.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BuildError(f"{cargo}: not valid TOML: {e}") from None
    package = data.get("package", {})
    name = str(package.get("name", src.name)).replace("-", "_")
    edition = str(package.get("edition", "2021"))
    others = sorted(set(data.get("dependencies", {})) - {"fnhost"})
    if others:
        raise BuildError(
            f"{cargo}: depends on {', '.join(others)}; Rust guests are built offline with rustc alone, "
            "so `fnhost` is the only dependency they may have"
        )
    entry = src / str(data.get("lib", {}).get("path", "src/lib.rs"))
    if not entry.is_file():
        raise BuildError(f"{src}: no {entry.relative_to(src)} (the crate root holding `fnhost::export!`)")
    return name, edition, entry


def _rustc(args: list[str], *, what: str, cwd: Path | None = None) -> None:
    cmd = [rustc(), "--target", TARGET, *CODEGEN, *args]
    run_tool(cmd, doing=f"building {what}", timeout=TIMEOUT_S, setup=SETUP, cwd=cwd)
