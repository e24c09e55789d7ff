"""JavaScript guests: componentize-js (SpiderMonkey) snapshots the guest's ES modules, the SDK
(`sdk/js`, imported as ``"fnhost"``) and its npm packages (bundled by rolldown) into a component of
the `function` world. The steps are in ``js_componentize.mjs``, run by node.

The tools are the npm packages pinned in the Justfile and locked in ``js-tools.lock.json``, which
`just setup-js` installs once into ``<cache>/tools/componentize-js-<version>`` (``$FNHOST_JS_TOOLS``
names another such directory); their versions and lock are part of the cache key.
The entry module is ``app.js`` (or ``app.mjs``, or package.json's ``"main"``). npm packages are
whatever ``npm install`` put in the guest's ``node_modules``; their installed versions are part of
the cache key (`dependency_key`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from ..errors import BuildError
from . import default_cache_dir, run_tool, sdk_root, wit_dir

SETUP = "install it with `just setup-js` (npm installs the pinned componentize-js into ~/.cache/fnhost/tools)"
TIMEOUT_S = 600
DRIVER = Path(__file__).with_name("js_componentize.mjs")
PACKAGES = ("@bytecodealliance/componentize-js", "@bytecodealliance/preview2-shim", "rolldown", "es-module-lexer")
ENTRIES = ("app.js", "app.mjs")
TOOLS_DIR_RE = re.compile(r"componentize-js-[0-9]+(\.[0-9]+)*")


@functools.cache
def tools_dir() -> Path:
    """The `node_modules` holding the pinned packages."""
    override = os.environ.get("FNHOST_JS_TOOLS")
    if override:
        candidates = [Path(override)]
    else:  # complete installs only (`just setup-js` writes .installed last), newest first
        found = [p for p in (default_cache_dir() / "tools").glob("componentize-js-*") if TOOLS_DIR_RE.fullmatch(p.name)]
        installed = [p for p in found if (p / ".installed").is_file()]
        candidates = sorted(installed, key=lambda p: _version_key(p.name.rpartition("-")[2]), reverse=True)
    for root in candidates:
        modules = root / "node_modules"
        if all((modules / name / "package.json").is_file() for name in PACKAGES):
            return modules
    raise BuildError(f"componentize-js is not installed in {default_cache_dir() / 'tools'}; {SETUP}")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise BuildError("node not found on PATH: JavaScript guests are built with Node.js 18 or newer; " + SETUP)
    return found


@functools.cache
def toolchain_id() -> str:
    versions = " ".join(f"{name.rpartition('/')[2]} {_package_version(tools_dir() / name)}" for name in PACKAGES)
    done = run_tool([node(), "--version"], doing="reporting its version", timeout=60, setup=SETUP)
    driver = hashlib.sha256(DRIVER.read_bytes()).hexdigest()[:12]
    lock = tools_dir().parent / "package-lock.json"  # the tools' whole dependency tree, as installed
    locked = hashlib.sha256(lock.read_bytes()).hexdigest()[:12] if lock.is_file() else "unlocked"
    return f"{versions} node {done.stdout.strip()} driver {driver} lock {locked}"


def sdk_dir() -> Path:
    return sdk_root() / "js"


def dependency_key(src: Path) -> str:
    """The installed npm packages (name@version of every package.json under node_modules)."""
    modules = src / "node_modules"
    if not modules.is_dir():
        return ""
    lock = modules / ".package-lock.json"  # npm's record of what it installed
    if lock.is_file():
        return hashlib.sha256(lock.read_bytes()).hexdigest()
    packages = (p.parent for p in modules.rglob("package.json"))
    found = sorted(f"{p.relative_to(modules)}@{_package_version(p)}" for p in packages)
    return hashlib.sha256("\n".join(found).encode()).hexdigest()


def entry_module(src: Path) -> str:
    for name in ENTRIES:
        if (src / name).is_file():
            return name
    package = src / "package.json"
    if package.is_file():
        try:
            main = json.loads(package.read_text(encoding="utf-8")).get("main")
        except (ValueError, AttributeError) as e:
            raise BuildError(f"{package}: not a JSON object ({e})") from None
        if isinstance(main, str) and (src / main).is_file() and not Path(main).is_absolute() and ".." not in main:
            return Path(main).as_posix().removeprefix("./")
    raise BuildError(
        f"{src}: no app.js (a JavaScript guest's entry module is app.js, or package.json's \"main\", "
        "ending with `export const { handleHttp, handleEvent } = app.world();`)"
    )


def build(src: Path, out: Path) -> None:
    entry = entry_module(src)
    cmd = [node(), str(DRIVER), str(tools_dir()), str(src), entry, str(sdk_dir()), str(wit_dir()), str(out)]
    run_tool(cmd, doing=f"building {src}", timeout=TIMEOUT_S, setup=SETUP, cwd=src)


def _package_version(package_dir: Path) -> str:
    try:
        version = json.loads((package_dir / "package.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return "?"
    return str(version)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))
