"""`fnhost build`: turn a guest's source directory into a wasm binary, cached by source hash.

`build_guest(src_dir)` reads `fnhost.toml`, picks the language, builds with that language's
toolchain and caches the result under
``<cache_dir>/guests/<sha256>/function.wasm``, where the hash covers the language, the toolchain
version, every source file (relative path and contents), the guest's installed dependencies, the
language's SDK files and the WIT world. A second build of unchanged sources is a file lookup.
Nothing is written into the source directory.

Language: ``[build] language = "..."`` in fnhost.toml if present; otherwise ``Cargo.toml`` → rust,
``go.mod`` → go, a ``*.c`` file → c, ``app.py`` → python, ``app.js``/``package.json`` → js, else
python.

Per-language modules (``fnhost.build.<language>``, imported only when that language is built)
follow one small protocol:

``build(src: Path, out: Path) -> None``
    Required. Build the guest in `src` into the file `out` (which does not exist yet; the caller
    moves it into the cache). Raise `BuildError` for a missing toolchain — naming ``just setup``,
    the recipe that installs it — or for a compile error, with the tail of the tool's stderr.
``toolchain_id() -> str``
    Optional (default: the language name). The toolchain's name and version, e.g.
    ``"componentize-py 0.25.1"``; part of the cache key, so an upgrade rebuilds.
``sdk_dir() -> Path | None``
    Optional (default: None). The language's guest SDK directory (e.g. ``sdk/python``); every
    file in it is part of the cache key.
``dependency_key(src: Path) -> str``
    Optional (default: ""). What the guest's installed dependencies are (e.g. the npm packages in
    ``node_modules``, which is not hashed as source); part of the cache key.

Guest SDKs and the WIT live in the repository's ``sdk/`` (one definition: see `sdk_root`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import BuildError, ManifestError
from ..manifest import Manifest

LANGUAGES = ("python", "rust", "go", "c", "js")
SETUP_HINT = "install the guest toolchains with `just setup`"
# Not sources: VCS and tool state, build outputs, editor bindings.
SKIP_DIRS = frozenset({"__pycache__", "target", "wit_world", "node_modules"})
SKIP_SUFFIXES = (".wasm", ".pyc")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltGuest:
    wasm_path: Path  # inside the cache: copy it before changing it
    manifest: Manifest
    language: str
    cached: bool  # True if no toolchain ran


def sdk_root() -> Path:
    """The repository's `sdk/` directory (WIT world and guest SDKs), next to `host/`."""
    root = Path(__file__).resolve().parents[3] / "sdk"
    if not (root / "wit" / "fnhost.wit").is_file():
        raise BuildError(
            f"guest SDKs not found at {root}: `fnhost build` needs a source checkout of fnhost "
            "(clone the repository and `pip install -e .` from it)"
        )
    return root


def wit_dir() -> Path:
    """The directory holding the WIT world `function` (`sdk/wit`)."""
    return sdk_root() / "wit"


def default_cache_dir() -> Path:
    env = os.environ.get("FNHOST_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "fnhost"


def build_guest(src_dir: Path, *, cache_dir: Path | None = None, progress: Progress | None = None) -> BuiltGuest:
    """Build the guest in `src_dir` (or find it in the cache). Raises `BuildError` or `ManifestError`."""
    src = Path(src_dir).resolve()
    if not src.is_dir():
        raise BuildError(f"{src_dir}: not a directory (give the guest's source directory)")
    manifest, language = read_guest(src)
    builder = _builder(language)
    toolchain = builder.toolchain_id() if hasattr(builder, "toolchain_id") else language
    sdk = builder.sdk_dir() if hasattr(builder, "sdk_dir") else None
    deps = builder.dependency_key(src) if hasattr(builder, "dependency_key") else ""
    key = source_hash(src, language=language, toolchain=toolchain, sdk_dir=sdk, dependencies=deps)
    target = (cache_dir or default_cache_dir()) / "guests" / key / "function.wasm"
    if target.is_file():
        _say(progress, f"{manifest.name}: cached {target}")
        return BuiltGuest(target, manifest, language, cached=True)

    _say(progress, f"{manifest.name}: building {language} guest with {toolchain}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        out = Path(tmp) / "function.wasm"
        builder.build(src, out)
        if not out.is_file() or out.stat().st_size == 0:
            raise BuildError(f"{manifest.name}: the {language} build wrote no wasm file ({toolchain})")
        os.replace(out, target)  # atomic: a reader sees no file or the whole file
    _say(progress, f"{manifest.name}: built {target} ({target.stat().st_size} bytes)")
    return BuiltGuest(target, manifest, language, cached=False)


def read_guest(src: Path) -> tuple[Manifest, str]:
    """The guest's manifest and language."""
    path = src / "fnhost.toml"
    if not path.is_file():
        raise BuildError(f"{src}: no fnhost.toml (every guest directory needs its manifest)")
    text = path.read_bytes()
    manifest = Manifest.from_toml(text)
    build = tomllib.loads(text.decode()).get("build", {})
    if not isinstance(build, dict):
        raise ManifestError("build: must be a table")
    for field in build:
        if field != "language":
            raise ManifestError(f"build.{field}: unknown field (known: language)")
    language = build.get("language") or detect_language(src)
    if language not in LANGUAGES:
        raise ManifestError(f"build.language: must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return manifest, language


def detect_language(src: Path) -> str:
    if (src / "Cargo.toml").is_file():
        return "rust"
    if (src / "go.mod").is_file():
        return "go"
    if any(src.glob("*.c")):
        return "c"
    if (src / "app.py").is_file():
        return "python"
    if (src / "app.js").is_file() or (src / "package.json").is_file():
        return "js"
    return "python"


def source_hash(
    src: Path, *, language: str, toolchain: str, sdk_dir: Path | None, dependencies: str = ""
) -> str:
    """sha256 over everything that decides the output: language, toolchain, installed dependencies,
    sources, SDK, WIT."""
    h = hashlib.sha256()
    for part in (language, toolchain):
        _feed(h, part.encode())
    if dependencies:  # guests without installed dependencies keep the keys they always had
        _feed(h, b"dependencies:" + dependencies.encode())
    for label, root in (("src", src), ("sdk", sdk_dir), ("wit", wit_dir())):
        if root is None:
            continue
        for rel in sorted(_source_files(root)):
            _feed(h, f"{label}/{rel}".encode())
            _feed(h, (root / rel).read_bytes())
    return h.hexdigest()


def _source_files(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and not name.endswith(SKIP_SUFFIXES):
                yield Path(dirpath, name).relative_to(root).as_posix()


def _feed(h: hashlib._Hash, data: bytes) -> None:
    h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two inputs hash alike by concatenation
    h.update(data)


def _builder(language: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.{language}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{language}":
            raise
        raise BuildError(f"building {language} guests is not supported by this fnhost yet") from None


def require_tool(name: str, what: str) -> str:
    """The path of executable `name`, or a `BuildError` saying how to install it.

    The running interpreter's scripts directory comes first, so `.venv/bin/fnhost build` finds the
    venv's componentize-py without the venv being activated.
    """
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found on PATH: it is needed to build {what}; {SETUP_HINT}")
    return path


def run_tool(
    cmd: list[str],
    *,
    doing: str,
    timeout: float,
    setup: str = SETUP_HINT,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one toolchain command; every way it can fail is a `BuildError` that says what was being
    done (`doing`, e.g. "building guests/rust/hello") and, for a missing tool, how to install it."""
    tool = cmd[2] if cmd[1:2] == ["-m"] else Path(cmd[0]).name  # `python -m ziglang` is zig
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} cannot be run; {setup}") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{tool} did not finish within {timeout:g} s {doing}") from None
    if check and done.returncode != 0:
        raise BuildError(f"{tool} failed {doing}:\n{stderr_tail(done.stderr + done.stdout)}")
    return done


def stderr_tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


__all__ = ["BuiltGuest", "build_guest", "default_cache_dir", "read_guest", "sdk_root", "wit_dir"]
