"""`fnhost up`: deploy an app file's functions over the HTTP API, in two phases.

1. **Check and build.** The secrets the functions' manifests grant must exist (else nothing
   happens, and the message names the `fnhost secrets set` commands); every function is built
   (a cached build when its source is unchanged) before anything is uploaded, so a build error
   leaves the server as it was.
2. **Upload.** Each function whose wasm or manifest differs from its newest version is uploaded
   with `live=false`: a new version, serving nothing yet. A failure here leaves every alias where it
   was; the versions already uploaded are reused by the next `up` (an identical upload is no new
   version).
3. **Release.** One `POST /v1/releases` points every declared alias (`live` by default) at its
   function's new version — in one transaction, so either the whole app moves or none of it does.
   A pinned `live` (a rollback) refuses the release and is named with the fix.

The report says, per function: unchanged, new version N, or which aliases moved (from → to).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .api.paths import in_namespace
from .appfile import App, AppFunction
from .errors import FnhostError

Progress = Callable[[str], None]
UPLOAD_COMPRESSLEVEL = 1
"""Bundles `up` packs are sent once: deflate level 1 packs an 18 MB Python component in ~1 s instead of
~10 s at `fnhost build`'s level 9, for 13 % more bytes (bench/pack.py)."""


class ApiClient(Protocol):
    """What `up` needs of a client of the HTTP API: JSON requests whose failures raise with the server's message."""

    namespace: str | None

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class UpError(FnhostError):
    """`up` stopped; the message says what was done, what was not, and where live traffic is."""

    code = "up_failed"
    http_status = 409


@dataclass
class Built:
    """A function ready to upload: its bundle, and what identifies its content on the server."""

    function: AppFunction
    bundle: bytes
    sha256: str
    manifest: dict[str, Any]


@dataclass
class FunctionResult:
    """What `up` did to one function."""

    name: str
    version: int | None = None
    """The version its aliases point at after this `up` (None: it failed before one existed)."""
    uploaded: bool = False
    """A new version was uploaded by this `up`."""
    moves: list[tuple[str, int | None, int]] = field(default_factory=list)
    """(alias, from, to) for each alias this `up` moved (from None: the alias is new)."""

    def summary(self) -> str:
        moved = "; ".join(f"{a} {'(new)' if old is None else old} -> {new}" for a, old, new in self.moves)
        if self.uploaded:
            return f"{self.name}: new version {self.version}" + (f"; {moved}" if moved else "")
        if self.moves:
            return f"{self.name}: version {self.version}; {moved}"
        return f"{self.name}: unchanged (version {self.version})"


@dataclass
class UpReport:
    app: App
    functions: list[FunctionResult]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.uploaded or f.moves for f in self.functions)

    def lines(self) -> list[str]:
        stage = f" (stage {self.app.stage})" if self.app.stage else ""
        head = f"app {self.app.name}{stage}: " + ("released" if self.changed else "nothing changed")
        return [head, *(f"  {f.summary()}" for f in self.functions), *(f"warning: {w}" for w in self.warnings)]


def up(
    app: App,
    client: ApiClient,
    *,
    only: Collection[str] | None = None,
    cache_dir: Path | None = None,
    sign: Path | None = None,
    progress: Progress = lambda message: None,
) -> UpReport:
    """Deploy `app` (the functions named in `only`, else all) through `client`; see the module docstring."""
    deployer = _Deployer(app, client, progress)
    functions = [f for f in app.functions if only is None or f.name in only]
    warnings = deployer.check_secrets(functions)
    built = [deployer.build(f, cache_dir, sign) for f in functions]
    results = [FunctionResult(b.function.name) for b in built]
    deployed = deployer.deployed()
    for b, result in zip(built, results, strict=True):
        try:
            deployer.upload(b, result, deployed.get(b.function.name))
        except FnhostError as e:
            raise UpError(deployer.stopped(results, f"uploading {b.function.name} failed: {e}")) from None
    moves = [
        (r.name, alias, r.version)
        for b, r in zip(built, results, strict=True)
        if r.version is not None
        for alias in b.function.aliases
        if deployed.get(r.name, {}).get("aliases", {}).get(alias) != r.version
    ]
    if moves:
        try:
            released = deployer.release(moves)
        except FnhostError as e:
            raise UpError(deployer.stopped(results, f"the release failed: {e}")) from None
        by_name = {r.name: r for r in results}
        for move in released:
            by_name[move["function"]].moves.append((move["alias"], move["previous"], move["version"]))
    return UpReport(app, results, warnings)


class _Deployer:
    def __init__(self, app: App, client: ApiClient, progress: Progress) -> None:
        self.app = app
        self.client = client
        self.say = progress
        theirs = client.namespace or "default"
        if app.namespace is not None and client.namespace is not None and theirs != app.namespace:
            raise UpError(
                f"{app.path}: the app deploys to namespace {app.namespace!r} but the client is set to "
                f"{theirs!r} (--namespace or $FNHOST_NAMESPACE); drop one of them"
            )
        self.namespace = app.namespace or theirs

    def path(self, path: str) -> str:
        """`path` in the app's namespace (the client's own when the app names none)."""
        if self.app.namespace is None or self.app.namespace == "default":
            return path
        return in_namespace(path).replace("{namespace}", self.app.namespace)

    def check_secrets(self, functions: list[AppFunction]) -> list[str]:
        needed: dict[str, list[str]] = {}
        for f in functions:
            for secret in f.secrets:
                if "/" not in secret:  # another namespace's, shared: its admin sets it
                    needed.setdefault(secret, []).append(f.name)
        if not needed:
            return []
        try:
            existing = set(self.client.json("GET", self.path("/v1/secrets"))["secrets"])
        except FnhostError as e:
            return [f"could not check that the secrets {', '.join(needed)} exist ({e}); an admin key can"]
        missing = {s: fs for s, fs in needed.items() if s not in existing}
        if missing:
            ns = "" if self.namespace == "default" else f" --namespace {self.namespace}"
            listed = "; ".join(f"{s} (needed by {', '.join(fs)})" for s, fs in sorted(missing.items()))
            commands = " && ".join(f"fnhost secrets set{ns} {s}" for s in sorted(missing))
            raise UpError(f"nothing was deployed: missing secrets: {listed}; set them first: {commands}")
        return []

    def build(self, f: AppFunction, cache_dir: Path | None, sign: Path | None) -> Built:
        from .control import bundle_digest, open_bundle, pack_bundle, sign_bundle

        try:
            if f.source is not None:
                from .build import build_guest

                built = build_guest(f.source, cache_dir=cache_dir, progress=lambda m: self.say(f"  {m}"))
                wasm = built.wasm_path.read_bytes()
            else:
                assert f.bundle is not None
                bundle = open_bundle(f.bundle.read_bytes())
                if not f.overridden and sign is None:
                    return Built(f, f.bundle.read_bytes(), hashlib.sha256(bundle.wasm).hexdigest(), _normal(f))
                wasm = bundle.wasm
        except (FnhostError, OSError) as e:
            raise UpError(f"nothing was deployed: {f.name} ({f.location}) does not build: {e}") from None
        signature = None
        if sign is not None:
            try:
                signature = sign_bundle(bundle_digest(f.manifest_text, wasm), sign.read_bytes())
            except (OSError, ValueError) as e:
                raise UpError(f"nothing was deployed: cannot sign with {sign} ({e})") from None
        data = pack_bundle(f.manifest_text, wasm, signature=signature, compresslevel=UPLOAD_COMPRESSLEVEL)
        return Built(f, data, hashlib.sha256(wasm).hexdigest(), _normal(f))

    def deployed(self) -> dict[str, dict[str, Any]]:
        """Per function of the app that exists: its aliases {alias: version} and its newest version."""
        listed = self.client.json("GET", self.path("/v1/functions"))["functions"]
        wanted = {f.name for f in self.app.functions}
        out: dict[str, dict[str, Any]] = {}
        for fn in listed:
            if fn["name"] in wanted:
                versions = self.client.json("GET", self.path(f"/v1/functions/{fn['name']}/versions"))["versions"]
                out[fn["name"]] = {
                    "aliases": {a["alias"]: a["version"] for a in fn["aliases"]},
                    "newest": versions[-1] if versions else None,
                }
        return out

    def upload(self, b: Built, result: FunctionResult, deployed: dict[str, Any] | None) -> None:
        newest = deployed["newest"] if deployed else None
        if newest is not None and newest["sha256"] == b.sha256 and newest["manifest"] == b.manifest:
            result.version = newest["version"]
            return
        name = b.function.name
        self.say(f"uploading {name} ({len(b.bundle)} bytes; not live until the release)")
        answer = self.client.json(
            "PUT",
            self.path(f"/v1/functions/{name}"),
            params={"live": "false"},
            content=b.bundle,
            headers={"Content-Type": "application/zip"},
        )
        result.version = answer["version"]
        result.uploaded = bool(answer["created"])

    def release(self, moves: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
        body = {"aliases": [{"function": f, "alias": a, "version": v} for f, a, v in moves]}
        self.say(f"releasing {', '.join(f'{f}:{a} -> {v}' for f, a, v in moves)}")
        released: list[dict[str, Any]] = self.client.json("POST", self.path("/v1/releases"), json=body)["released"]
        return released

    def stopped(self, results: list[FunctionResult], why: str) -> str:
        uploaded = [f"{r.name} version {r.version}" for r in results if r.uploaded]
        kept = f"; uploaded, not live: {', '.join(uploaded)}" if uploaded else ""
        return (
            f"{why}{kept}. No alias was moved: live traffic stays on the versions it was on. "
            "Fix the cause and run `fnhost up` again (uploaded versions are reused)"
        )


def _normal(f: AppFunction) -> dict[str, Any]:
    """The manifest as the server keeps and lists it (`Manifest.to_dict`, through JSON)."""
    normal: dict[str, Any] = json.loads(json.dumps(f.manifest.to_dict(), sort_keys=True))
    return normal
