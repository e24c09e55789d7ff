"""`fnhost dev`'s watch loop: keep a server's functions in step with an app's sources.

`DevLoop` seeds the secrets of the local, git-ignored secrets file (`.fnhost-secrets.toml` next to
the app file: `name = "value"` lines), runs `up` for the whole app, then watches the app file, the
secrets file and every function's source (watchfiles: inotify, debounced) and runs `up` again for
the functions whose files changed (the whole app when the app file did). A build that fails is
printed and changes nothing: the last good version keeps serving until the next edit builds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .appfile import SECRETS_FILE, App, load_app, load_secrets_file
from .build import SKIP_DIRS, SKIP_SUFFIXES
from .errors import FnhostError
from .up import ApiClient, up

Say = Callable[[str], None]


class DevLoop:
    """Deploys `app_path` (resolved for `stage`) through `client` on start and after every edit."""

    def __init__(
        self,
        app_path: Path,
        client: ApiClient,
        *,
        stage: str | None = None,
        cache_dir: Path | None = None,
        say: Say = print,
        load: Callable[[], App] | None = None,
    ) -> None:
        self.app_path = app_path
        self.client = client
        self.stage = stage
        self.cache_dir = cache_dir
        self.say = say
        self._load = load or (lambda: load_app(self.app_path, self.stage))
        self.secrets_path = app_path.resolve().parent / SECRETS_FILE
        self.deploys = 0
        """`up` runs that succeeded (tests and callers wait on it)."""
        self.failures = 0
        self.changed = threading.Condition()

    def seed_secrets(self) -> None:
        """Set every secret of the local secrets file on the server (values are never printed)."""
        secrets = load_secrets_file(self.secrets_path)
        if not secrets:
            return
        app = self._load()
        base = "/v1/secrets" if app.namespace in (None, "default") else f"/v1/namespaces/{app.namespace}/secrets"
        for name, value in secrets.items():
            self.client.json("PUT", f"{base}/{name}", json={"value": value})
        self.say(f"set {len(secrets)} secret(s) from {self.secrets_path.name}: {', '.join(sorted(secrets))}")

    def deploy(self, only: Iterable[str] | None = None) -> App | None:
        """One `up` (of the functions in `only`, else all); errors are printed, never raised. The app
        as loaded, or None when the app file itself is broken."""
        try:
            app = self._load()
        except FnhostError as e:
            self._done(False, f"fnhost dev: {e}; fix it and save again (still serving the last good versions)")
            return None
        try:
            report = up(app, self.client, only=None if only is None else set(only), cache_dir=self.cache_dir,
                        progress=self.say)  # fmt: skip
        except FnhostError as e:
            self._done(False, f"fnhost dev: {e}\nfnhost dev: still serving the last good versions; watching for edits")
            return app
        self._done(True, "\n".join(report.lines()))
        return app

    def _done(self, ok: bool, message: str) -> None:
        self.say(message)
        with self.changed:
            if ok:
                self.deploys += 1
            else:
                self.failures += 1
            self.changed.notify_all()

    def run(self, stop: threading.Event) -> None:
        """Seed secrets, deploy everything, then redeploy on each edit until `stop` is set."""
        import watchfiles

        try:
            self.seed_secrets()
        except FnhostError as e:
            self.say(f"fnhost dev: could not set the secrets of {self.secrets_path}: {e}")
        app = self.deploy()
        while not stop.is_set():
            roots = self._roots(app)
            if not roots:
                self.say("fnhost dev: nothing to watch; fix the app and restart")
                stop.wait()
                return
            self.say(f"watching {', '.join(str(r) for r in roots)} (Ctrl-C stops)")
            for changes in watchfiles.watch(*roots, stop_event=stop, watch_filter=_source_change, debounce=300):
                paths = {Path(p) for _, p in changes}
                if self.secrets_path in paths:
                    try:
                        self.seed_secrets()
                    except FnhostError as e:
                        self.say(f"fnhost dev: {e}")
                touched = self._functions_of(app, paths)
                if touched is None or touched:
                    self.say(f"changed: {', '.join(sorted(touched)) if touched else self.app_path.name}")
                    before = roots
                    app = self.deploy(touched) or app
                    if self._roots(app) != before:
                        break  # a function was added or moved: watch its directory too

    def _roots(self, app: App | None) -> list[Path]:
        # the app file's directory (its functions, the secrets file); without an app file, the guests only
        roots = {self.app_path.resolve().parent} if self.app_path.is_file() else set()
        for f in app.functions if app is not None else ():
            location = f.location if f.source is not None else f.location.parent
            if not any(location == r or r in location.parents for r in roots):
                roots.add(location)
        return sorted(roots)

    def _functions_of(self, app: App | None, paths: set[Path]) -> set[str] | None:
        """The functions whose sources include `paths`; None: the app file changed (deploy all)."""
        if app is None or self.app_path.resolve() in paths:
            return None
        touched: set[str] = set()
        for f in app.functions:
            location = f.location
            if any(p == location or location in p.parents for p in paths):
                touched.add(f.name)
        return touched


def _source_change(change: object, path: str) -> bool:
    """What counts as an edit: what `fnhost build` hashes as source (not build outputs or editor files)."""
    p = Path(path)
    if any(part in SKIP_DIRS or part == ".git" for part in p.parts) or p.name.endswith((*SKIP_SUFFIXES, "~")):
        return False
    return not p.name.startswith(".") or p.name == SECRETS_FILE
