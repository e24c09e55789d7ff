"""The app file (`fnhost.app.toml`): several functions deployed together, with per-stage overrides.

An app file names functions and says where each comes from; everything else about a function stays
in its own `fnhost.toml` (one definition of each fact): its triggers (queues, schedules, blobs), the queues
and kv buckets it may use, the secrets it needs (`[grants] secrets`), its limits. The app file only
*overrides* manifest fields, for every stage or for one::

    name = "shop"
    # namespace = "team-a"          # default: the client's (--namespace, $FNHOST_NAMESPACE)

    [functions.orders]
    source = "orders"               # a guest source directory, relative to this file
    # bundle = "dist/orders.zip"    # or a built bundle: exactly one of source and bundle
    # aliases = ["live"]            # what `fnhost up` points at the deployed version (default live)

    [functions.report]
    source = "report"
    manifest = { env = { REPORT_TITLE = "Shop (dev)" } }   # merged into report/fnhost.toml

    [stage.prod]
    namespace = "shop-prod"
    [stage.prod.functions.report]
    aliases = ["live", "stable"]
    manifest = { triggers = { schedule = [{ name = "hourly", cron = "0 * * * *" }] } }

Overrides merge into the manifest table by table (a table's keys merge; any other value, arrays
included, replaces); the stage's come after the function's own. A function is deployed under its
`[functions.NAME]` key, whatever its `fnhost.toml` calls it. Every error names the file, the key
and the fix; every stage is checked when the file is loaded, so a typo in `[stage.prod]` is found by
a `fnhost up` of any stage.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import tomli_w

from .errors import FnhostError, ManifestError
from .manifest import Manifest
from .names import ALIAS, FUNCTION, NameRule

APP_FILE = "fnhost.app.toml"
"""The app file `fnhost up` and `fnhost dev` read by default (in the working directory)."""
SECRETS_FILE = ".fnhost-secrets.toml"
"""`fnhost dev`'s local secret values (`name = "value"`), next to the app file; keep it out of git."""
STAGE = NameRule("stage name", FUNCTION.pattern, FUNCTION.rule)
NAMESPACE = NameRule("namespace", FUNCTION.pattern, FUNCTION.rule)  # as fnhost.namespaces.check_namespace

_APP_KEYS = ("name", "namespace", "functions", "stage")
_FUNCTION_KEYS = ("source", "bundle", "aliases", "manifest")
_STAGE_KEYS = ("namespace", "functions")
_STAGE_FUNCTION_KEYS = ("aliases", "manifest")


class AppFileError(ManifestError):
    """An app file that cannot be used: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class AppFunction:
    """One function of an app, as one stage deploys it."""

    name: str
    """The name it is deployed under: its `[functions.NAME]` key."""
    source: Path | None
    """Its guest source directory (built by `fnhost up`), or None for a bundle."""
    bundle: Path | None
    aliases: tuple[str, ...]
    """The aliases `fnhost up` points at the deployed version; `live` unless the file says otherwise."""
    manifest_text: str
    """Its `fnhost.toml` with the app file's overrides merged in (the original text when there are none)."""
    manifest: Manifest
    overridden: bool = False
    """Whether `manifest_text` differs from the guest's own `fnhost.toml`."""

    @property
    def location(self) -> Path:
        """The source directory or bundle file (what `fnhost dev` watches)."""
        path = self.source if self.source is not None else self.bundle
        assert path is not None
        return path

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets its manifest grants (`[grants] secrets`): what must exist before it runs."""
        return self.manifest.grants.get("secrets")


@dataclass(frozen=True)
class App:
    """An app file, resolved for one stage (None: no stage's overrides)."""

    path: Path
    name: str
    stage: str | None
    namespace: str | None
    functions: tuple[AppFunction, ...]
    stages: tuple[str, ...] = field(default=())

    def function(self, name: str) -> AppFunction:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def secrets(self) -> dict[str, list[str]]:
        """Each secret the app's functions need (in their own namespace) -> the functions that need it."""
        needed: dict[str, list[str]] = {}
        for f in self.functions:
            for secret in f.secrets:
                if "/" not in secret:  # `namespace/name`: another namespace's, shared with this one
                    needed.setdefault(secret, []).append(f.name)
        return dict(sorted(needed.items()))


def load_app(path: str | Path = APP_FILE, stage: str | None = None) -> App:
    """Read, validate and resolve the app file at `path` for `stage` (every stage is validated)."""
    path = Path(path)
    try:
        raw_text = path.read_bytes()
    except FileNotFoundError:
        raise AppFileError(
            f"{path}: no such app file; write one (docs/apps.md) or give its path with --app"
        ) from None
    except OSError as e:
        raise AppFileError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        data = tomllib.loads(raw_text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise AppFileError(f"{path}: not valid TOML ({e})") from None
    return _App(path, data).resolve(stage)


def app_of_guests(dirs: list[Path], where: Path | None = None) -> App:
    """An app without an app file: each guest directory a function under its manifest's name (`fnhost
    dev --guests DIR`, or `fnhost dev` inside a function made by `fnhost new`). `where` stands for the
    app file's path in messages, and its directory holds the secrets file (default: the working directory)."""
    functions: dict[str, Any] = {}
    for d in dirs:
        try:
            name = Manifest.from_toml((d / "fnhost.toml").read_bytes()).name
        except OSError as e:
            raise AppFileError(f"{d}: no readable fnhost.toml ({e.strerror}); give a guest source directory") from None
        if name in functions:
            raise AppFileError(f"{d}: its function {name!r} is also {functions[name]['source']}; rename one")
        functions[name] = {"source": str(Path(d).resolve())}
    return _App(where or Path.cwd() / APP_FILE, {"name": "dev", "functions": functions}).resolve(None)


class _App:
    """The parsed file and what every stage shares; `resolve` makes the `App` of one stage."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.root = path.resolve().parent
        self.data = data
        _known(self, data, "", _APP_KEYS)
        name = data.get("name")
        if not FUNCTION.matches(name):
            self.fail("name", f"must be the app's name ({FUNCTION.rule}), got {name!r}", 'e.g. name = "shop"')
        self.name = str(name)
        self.namespace = self.namespace_of(data, "namespace")
        functions = data.get("functions")
        if not isinstance(functions, dict) or not functions:
            self.fail("functions", "the app declares no functions", 'add one: [functions.hello] source = "hello"')
        self.functions: dict[str, dict[str, Any]] = {}
        for fname, spec in functions.items():
            where = f"functions.{fname}"
            if not FUNCTION.matches(fname):
                self.fail(where, f"{fname!r} is not a function name ({FUNCTION.rule})", "rename the table")
            self.functions[fname] = self.table(spec, where, _FUNCTION_KEYS)
        stages = data.get("stage", {})
        self.stages: dict[str, dict[str, Any]] = {}
        for sname, spec in self.table(stages, "stage", None).items():
            where = f"stage.{sname}"
            if not STAGE.matches(sname):
                self.fail(where, f"{sname!r} is not a stage name ({STAGE.rule})", "rename the table")
            spec = self.table(spec, where, _STAGE_KEYS)
            for fname, fspec in self.table(spec.get("functions", {}), f"{where}.functions", None).items():
                if fname not in self.functions:
                    self.fail(
                        f"{where}.functions.{fname}",
                        f"the app has no function {fname!r} (its functions: {', '.join(self.functions)})",
                        f"declare [functions.{fname}] or fix the name",
                    )
                self.table(fspec, f"{where}.functions.{fname}", _STAGE_FUNCTION_KEYS)
            self.stages[sname] = spec

    def resolve(self, stage: str | None) -> App:
        if stage is not None and stage not in self.stages:
            known = ", ".join(self.stages) or "none"
            raise AppFileError(
                f"{self.path}: no stage {stage!r} (its stages: {known}); declare it as [stage.{stage}] or pick another"
            )
        resolved: dict[str | None, App] = {}
        for each in (None, *self.stages):  # every stage, so that a typo in any is found now
            resolved[each] = self._resolve(each)
        return resolved[stage]

    def _resolve(self, stage: str | None) -> App:
        overrides = self.stages.get(stage, {}) if stage is not None else {}
        namespace = self.namespace
        if stage is not None and "namespace" in overrides:
            namespace = self.namespace_of(overrides, "namespace", f"stage.{stage}.")
        stage_functions = overrides.get("functions", {})
        functions = tuple(
            self._function(name, spec, stage, stage_functions.get(name, {})) for name, spec in self.functions.items()
        )
        return App(self.path, self.name, stage, namespace, functions, tuple(self.stages))

    def _function(self, name: str, spec: dict[str, Any], stage: str | None, staged: dict[str, Any]) -> AppFunction:
        where = f"functions.{name}"
        source, bundle = spec.get("source"), spec.get("bundle")
        if (source is None) == (bundle is None):
            self.fail(where, "needs exactly one of source and bundle", f'e.g. source = "{name}" (a guest directory)')
        aliases_where = f"stage.{stage}.{where}.aliases" if "aliases" in staged else f"{where}.aliases"
        aliases = self.aliases(staged.get("aliases", spec.get("aliases", ["live"])), aliases_where)
        if source is not None:
            src = self.path_of(source, f"{where}.source")
            if not (src / "fnhost.toml").is_file():
                self.fail(f"{where}.source", f"{source!r} has no fnhost.toml", "point it at a guest source directory")
            original = self.read(src / "fnhost.toml", f"{where}.source")
            location: tuple[Path | None, Path | None] = (src, None)
        else:
            zip_path = self.path_of(bundle, f"{where}.bundle", directory=False)
            from .control.bundles import open_bundle

            try:
                original = open_bundle(zip_path.read_bytes()).manifest_text
            except (OSError, FnhostError) as e:
                self.fail(f"{where}.bundle", f"{bundle!r} is not a usable bundle ({e})", "rebuild it: fnhost build")
            location = (None, zip_path)
        layers = [(f"{where}.manifest", spec.get("manifest", {}))]
        if stage is not None:
            layers.append((f"stage.{stage}.{where}.manifest", staged.get("manifest", {})))
        try:
            manifest_data = tomllib.loads(original)
        except tomllib.TOMLDecodeError as e:
            self.fail(f"{where}", f"its fnhost.toml is not valid TOML ({e})", "fix the guest's fnhost.toml")
        overridden = manifest_data.get("name") != name
        for layer_where, layer in layers:
            layer = self.table(layer, layer_where, None)
            if "name" in layer:
                self.fail(f"{layer_where}.name", "a function's name is its [functions.NAME] key", "remove it")
            overridden = overridden or bool(layer)
            manifest_data = _merged(manifest_data, layer)
        manifest_data["name"] = name
        last = layers[-1][0] if any(layer for _, layer in layers) else where
        try:
            manifest = Manifest.from_dict(manifest_data)
        except ManifestError as e:
            self.fail(last, f"the manifest it makes is invalid: {e}", "fix the override or the guest's fnhost.toml")
        text = tomli_w.dumps(manifest_data) if overridden else original
        return AppFunction(name, location[0], location[1], aliases, text, manifest, overridden)

    # checks ------------------------------------------------------------------------------------
    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        raise AppFileError(f"{self.path}: {key}: {problem}; {fix}")

    def table(self, value: Any, where: str, known: tuple[str, ...] | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {type(value).__name__}", f"write it as [{where}]")
        if known is not None:
            _known(self, value, where + ".", known)
        return value

    def namespace_of(self, table: dict[str, Any], key: str, prefix: str = "") -> str | None:
        value = table.get(key)
        if value is not None and not NAMESPACE.matches(value):
            self.fail(prefix + key, f"{value!r} is not a namespace ({NAMESPACE.rule})", "fix the name")
        return value

    def aliases(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(ALIAS.matches(a) for a in value):
            self.fail(where, f"must be a list of alias names ({ALIAS.rule}), got {value!r}", 'e.g. aliases = ["live"]')
        if len(set(value)) != len(value):
            self.fail(where, f"names an alias twice: {value!r}", "list each once")
        return tuple(value)

    def path_of(self, value: Any, where: str, *, directory: bool = True) -> Path:
        if not isinstance(value, str) or not value:
            self.fail(where, f"must be a path relative to the app file, got {value!r}", 'e.g. "hello"')
        path = (self.root / value).resolve()
        if not (path.is_dir() if directory else path.is_file()):
            kind = "directory" if directory else "file"
            self.fail(where, f"{value!r} is not a {kind} (resolved: {path})", f"give the {kind}'s path")
        return path

    def read(self, path: Path, where: str) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self.fail(where, f"{path} cannot be read ({e})", "fix the file")


def _known(app: _App, table: dict[str, Any], prefix: str, known: tuple[str, ...]) -> None:
    for key in table:
        if key not in known:
            app.fail(prefix + key, "unknown key", f"the keys here are: {', '.join(known)}")


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in: tables key by key, every other value (arrays too) replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_secrets_file(path: Path) -> dict[str, str]:
    """`fnhost dev`'s local secrets (`name = "value"` lines); {} when the file does not exist."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise AppFileError(f"{path}: cannot be read as TOML ({e}); write one `name = \"value\"` per secret") from None
    for key, value in data.items():
        if not isinstance(value, str):
            raise AppFileError(f'{path}: {key}: must be a string value, e.g. {key} = "s3cret"')
    return data
