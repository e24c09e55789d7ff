"""The `fnhost` command: a server (`serve`), local tools (`build`, `keys gen-signing`) and a client
of the HTTP API for everything else.

Client commands talk to ``FNHOST_URL`` (default http://127.0.0.1:8080) with the API key in
``FNHOST_TOKEN`` or ``--token`` (``@FILE`` reads it from a file, e.g. ``--token @.fnhost/admin.key``),
in the namespace ``--namespace`` or ``FNHOST_NAMESPACE`` (default: ``default``).
Every command is a thin wrapper of one Host call or one API request; errors print the server's
message and exit with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .errors import FnhostError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = ".fnhost"
LISTEN_BACKLOG = 2048
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class CliError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(message: str) -> Iterator[None]:
    """Announce a long step; on a terminal, count the seconds until it ends."""
    start = time.monotonic()
    say(f"{message} ...")
    done = threading.Event()
    ticker = None
    if sys.stderr.isatty():

        def tick() -> None:
            while not done.wait(1.0):
                print(f"\r  {time.monotonic() - start:.0f}s", end="", file=sys.stderr, flush=True)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    try:
        yield
    finally:
        done.set()
        if ticker is not None:
            ticker.join()
            print("\r", end="", file=sys.stderr)
        say(f"  ... {time.monotonic() - start:.1f}s")


# server ------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    trusted = [_public_key_arg(k) for k in args.trusted_key]
    if args.processes > 1:
        return _serve_processes(args, trusted)
    _serve_host(args, trusted, run_triggers=not args.no_triggers)
    say("fnhost stopped")
    return 0


def _serve_host(
    args: argparse.Namespace, trusted: list[str], *, run_triggers: bool, listener_fd: int | None = None
) -> None:
    """One server process: a Host, its Triggers and the app, served by Hypercorn until a stop signal.

    Alone (`listener_fd` None) it does the start work first and binds --host:--port itself; as one
    of `--processes N` it serves the parent's socket and names itself on every response.
    """
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from .api import create_app
    from .api.middleware import ProcessIdMiddleware
    from .host import Host
    from .triggers import Triggers

    host = Host(
        Path(args.data_dir),
        cache_dir=args.cache_dir,
        database=args.database,
        max_pinned_per_function=args.max_pinned_per_function,
        max_pinned=args.max_pinned,
        max_warm_mb=args.max_warm_mb,
        max_blob_bytes=args.max_blob_bytes,
    )
    triggers = Triggers(host)
    stopping = _Stopping(lambda: triggers.stop(timeout_s=args.graceful_timeout))  # a no-op until started
    try:
        if listener_fd is None:
            _start_work(host, args, trusted)
        given: dict[str, Any] = {"body_timeout_s": args.body_timeout}
        if args.max_body_bytes is not None:
            given["max_body_bytes"] = args.max_body_bytes
        if args.max_body_bytes_in_flight is not None:
            given["max_body_bytes_in_flight"] = args.max_body_bytes_in_flight
        app: Any = create_app(
            host,
            read_only=args.read_only,
            workers=args.workers,
            global_concurrency=args.global_concurrency,
            function_share=args.function_share,
            namespace_share=args.namespace_share,
            trusted_keys=trusted,
            triggers=triggers,
            **given,
        )
        if run_triggers:
            triggers.start()  # async invokes, queue triggers and schedules (docs/events.md)
        config = Config()
        config.bind = [f"{args.host}:{args.port}"]
        config.accesslog = "-" if args.access_log else None
        config.graceful_timeout = args.graceful_timeout
        config.read_timeout = args.read_timeout  # a connection that sends nothing for this long is closed
        if listener_fd is None:
            say(_serving_banner(args))
        else:
            app = ProcessIdMiddleware(app)
            config.bind = [f"fd://{listener_fd}"]
            config.backlog = LISTEN_BACKLOG  # Hypercorn listens again, with this
        asyncio.run(_serve_until_signal(serve, app, config, on_stop=stopping.start))
    finally:
        # The whole stop fits in --graceful-timeout (+ a moment to close): the triggers stopped
        # while Hypercorn finished its requests, and closing the host stops waiting for guests.
        if not stopping.join(args.graceful_timeout + STOP_MARGIN_S / 2):
            say(f"some trigger workers were still running after {args.graceful_timeout:g} s")
        host.close()


def _start_work(host: Any, args: argparse.Namespace, trusted: list[str]) -> None:
    """What a server does once at start: the bootstrap admin key, then `--bundles` / `dev` deploys."""
    from .control import ApiKeys

    admin_file = ApiKeys(host.db).ensure_bootstrap_admin(Path(args.data_dir))
    if admin_file is not None:
        say(f"created the first admin API key; its token is in {admin_file} (mode 0600)")
        say(f"  use it with: export FNHOST_TOKEN=$(cat {admin_file})")
    if args.bundles:
        deploy_at_start(host, _bundle_files(Path(args.bundles)), trusted, created_by="serve --bundles")
    if args.command == "dev":
        sources = [(str(d), _builder_of(d)) for d in _guest_dirs(args.guests)]
        deploy_at_start(host, sources, trusted, created_by="dev", skip_failures=True)


def _serving_banner(args: argparse.Namespace) -> str:
    mode = "read-only" if args.read_only else "read-write"
    processes = f", {args.processes} processes" if args.processes > 1 else ""
    return (
        f"fnhost serving {Path(args.data_dir)} on http://{args.host}:{args.port} "
        f"({mode}, {args.workers} workers{processes})"
    )


def _serve_processes(args: argparse.Namespace, trusted: list[str]) -> int:
    """`--processes N`: the start work in a passing child, then N server children on the port.

    This process never makes a Host itself: compiling leaves Wasmtime's native worker threads
    behind, and a forked child would wait forever on them. Every child runs the triggers (queue
    receives, async claims and schedule ticks are claimed in the database, so they compete safely).
    Metrics: prometheus_client's multiprocess mode (see api/metrics.py).
    """
    import tempfile

    from .processes import Supervisor, listen

    if "prometheus_client" in sys.modules:  # its value class is chosen when it is imported
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    metrics_dir = tempfile.mkdtemp(prefix="fnhost-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        with Supervisor(say) as supervisor:

            def start_work() -> int:
                from .host import Host

                with Host(Path(args.data_dir), cache_dir=args.cache_dir, database=args.database) as host:
                    return _reported(lambda: _start_work(host, args, trusted))

            code = supervisor.run_once(start_work)
            if supervisor.stop_signal is not None:
                say("fnhost stopped")
                return 0
            if code != 0:
                return code
            servers = range(args.processes)
            try:
                # one socket per process: the kernel spreads connections over them, where one shared
                # socket lets whichever process wakes first take every connection waiting
                listeners = [listen(args.host, args.port, LISTEN_BACKLOG, reuse_port=True) for _ in servers]
            except OSError as e:
                raise CliError(
                    f"cannot listen on {args.host}:{args.port}: {e.strerror}; is another server there? "
                    "choose another --port"
                ) from None
            say(_serving_banner(args))

            def server(index: int) -> int:
                run_triggers = not args.no_triggers  # every process: their claims compete safely
                fd = listeners[index].fileno()
                return _reported(lambda: _serve_host(args, trusted, run_triggers=run_triggers, listener_fd=fd))

            with contextlib.ExitStack() as sockets:
                for listener in listeners:
                    sockets.enter_context(listener)
                # the slowest stop: Hypercorn's graceful timeout, then the triggers', then the Host's
                stop_timeout_s = 2 * args.graceful_timeout + 15
                code = supervisor.serve(args.processes, server, stop_timeout_s=stop_timeout_s, on_exit=_metrics_gone)
        say("fnhost stopped")
        return code
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_gone(pid: int) -> None:
    """A server process has exited: its live gauges (in flight) no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def _reported(work: Callable[[], None]) -> int:
    """`work`'s exit status in a child process, with errors reported as `main` reports them."""
    try:
        work()
    except (CliError, FnhostError) as e:
        say(f"fnhost: error: {e}")
        return 1
    return 0


class _Stopping:
    """Work to do once a stop signal arrives, on its own thread, alongside Hypercorn's graceful stop."""

    def __init__(self, work: Callable[[], bool]) -> None:
        self._work = work
        self._clean = True
        self._thread: threading.Thread | None = None
        self._started_at = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="fnhost-stopping", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        self._clean = self._work()

    def join(self, budget_s: float) -> bool:
        """Wait for the work, at most until `budget_s` after the signal; True if it ended cleanly."""
        self.start()  # no signal (an error ended serving): do it now
        assert self._thread is not None
        self._thread.join(max(0.0, self._started_at + budget_s - time.monotonic()))
        return self._clean and not self._thread.is_alive()


STOP_MARGIN_S = 1.0
"""A stop ends within --graceful-timeout plus this."""


async def _serve_until_signal(
    serve: Any, app: Any, config: Any, on_stop: Callable[[], None] = lambda: None
) -> None:
    """Serve until SIGINT or SIGTERM, then let in-flight requests finish (graceful_timeout)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_now() -> None:
        stop.set()
        on_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_now)
    # a server process of `--processes N` starts with them blocked, so that none is lost meanwhile
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
    await serve(app, config, shutdown_trigger=stop.wait)


def deploy_at_start(
    host: Any,
    sources: list[tuple[str, Callable[[], bytes]]],
    trusted_keys: list[str],
    *,
    created_by: str,
    skip_failures: bool = False,
) -> None:
    """Deploy bundles before serving (verified if `trusted_keys`), each audited.

    `sources` are (label, a function returning the bundle zip). A bad bundle stops the start,
    naming it, unless `skip_failures` (`fnhost dev`: a guest whose toolchain is missing is skipped).
    """
    from .control import AuditLog, open_bundle, verify_bundle

    audit = AuditLog(host.db)
    for label, load in sources:
        try:
            with progress(f"deploying {label}"):
                bundle = open_bundle(load())
                signer = verify_bundle(bundle, trusted_keys) if trusted_keys else None
                name = bundle.manifest.name
                version = host.deploy(name, bundle.wasm, bundle.manifest, created_by=created_by)
        except (FnhostError, CliError) as e:
            if not skip_failures:
                raise CliError(f"{label}: {e}") from None
            say(f"  skipped {label}: {e}")
            continue
        detail = {"source": label, "version": version.version, "signed_by": signer}
        audit.record("function.deploy", name, "ok", None, None, detail)
        say(f"  {name} version {version.version}" + (f" (signed by {signer})" if signer else ""))


def _bundle_files(bundles: Path) -> list[tuple[str, Callable[[], bytes]]]:
    paths = sorted(bundles.glob("*.zip"))
    if not paths:
        raise CliError(f"--bundles {bundles}: no *.zip files there; build some with `fnhost build DIR -o`")
    return [(str(p), p.read_bytes) for p in paths]


def _guest_dirs(given: list[str] | None) -> list[Path]:
    """`fnhost dev`'s guests: the ones given, else the repository's Rust examples (fast to build)."""
    if given:
        return [Path(g) for g in given]
    from .build import sdk_root

    return sorted(d for d in (sdk_root().parent / "guests" / "rust").iterdir() if (d / "fnhost.toml").is_file())


def _builder_of(src: Path) -> Callable[[], bytes]:
    return lambda: build_bundle(src)[1]


def _public_key_arg(value: str) -> str:
    """`ed25519:<base64>`, or a file holding one (as `fnhost keys gen-signing` writes *.pub)."""
    from .control import parse_public_key

    key = value if value.startswith("ed25519:") else _read_text(value, "--trusted-key").strip()
    try:
        parse_public_key(key)
    except ValueError as e:
        raise CliError(f"--trusted-key {value}: {e}") from None
    return key


# local tools -------------------------------------------------------------------------------------
def build_bundle(
    src: Path, *, sign: str | None = None, name: str | None = None, cache_dir: Path | None = None
) -> tuple[str, bytes]:
    """Build the guest in `src` and pack it (signed with the key file `sign`): (name, zip bytes)."""
    from .build import build_guest
    from .control import bundle_digest, pack_bundle, sign_bundle

    with progress(f"building {src}"):
        built = build_guest(src, cache_dir=cache_dir, progress=lambda m: say(f"  {m}"))
    manifest_text = (src / "fnhost.toml").read_text(encoding="utf-8")
    if name is not None and name != built.manifest.name:
        manifest_text = _renamed(manifest_text, built.manifest.name, name)
    wasm = built.wasm_path.read_bytes()
    signature = None
    if sign is not None:
        key_pem = Path(sign).read_bytes() if Path(sign).is_file() else None
        if key_pem is None:
            raise CliError(f"--sign {sign}: no such key file; make one with `fnhost keys gen-signing -o {sign}`")
        signature = sign_bundle(bundle_digest(manifest_text, wasm), key_pem)
    return name or built.manifest.name, pack_bundle(manifest_text, wasm, signature=signature)


def _renamed(manifest_text: str, old: str, new: str) -> str:
    """The manifest with its top-level `name` changed (deploying one source under several names)."""
    from .manifest import Manifest

    text, count = re.subn(
        r'(?m)^(\s*name\s*=\s*)(["\'])' + re.escape(old) + r"\2",
        rf"\g<1>\g<2>{new}\g<2>",
        manifest_text,
        count=1,
    )
    if count != 1 or Manifest.from_toml(text).name != new:
        raise CliError(f"--name: could not rename {old!r} in fnhost.toml; edit its `name` instead")
    return text


def cmd_build(args: argparse.Namespace) -> int:
    out = Path(args.output) if args.output else None
    if out is not None and out.suffix == ".wasm":  # just the binary, e.g. for Host.deploy or tests
        if args.sign:
            raise CliError("--sign signs bundles; write a .zip (-o NAME.zip) to sign")
        from .build import build_guest

        with progress(f"building {args.dir}"):
            built = build_guest(Path(args.dir), cache_dir=args.cache_dir, progress=lambda m: say(f"  {m}"))
        shutil.copyfile(built.wasm_path, out)
        print(f"wrote {out} ({out.stat().st_size} bytes)")
        return 0
    name, data = build_bundle(Path(args.dir), sign=args.sign, cache_dir=args.cache_dir)
    out = out or default_bundle_path(Path(args.dir), name, args.cache_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes{', signed' if args.sign else ''})")
    return 0


def default_bundle_path(src: Path, name: str, cache_dir: Path | None) -> Path:
    """NAME.zip in the working directory, unless that is inside the guest's source: a bundle there
    would change the source hash, so the next build would not be a cache hit. Then the cache's bundles/."""
    from .build import default_cache_dir

    here = Path.cwd().resolve()
    if here == src.resolve() or src.resolve() in here.parents:
        return (cache_dir or default_cache_dir()) / "bundles" / f"{name}.zip"
    return Path(f"{name}.zip")


def cmd_new(args: argparse.Namespace) -> int:
    from .build.templates import new_function

    files = new_function(args.language, Path(args.dir), name=args.name)
    print(f"wrote {len(files)} files to {args.dir}: {', '.join(str(f.relative_to(args.dir)) for f in files)}")
    print(f"next: cd {args.dir} && fnhost build . && python -m pytest test_function.py && fnhost deploy .")
    return 0


def cmd_gen_signing(args: argparse.Namespace) -> int:
    from .control import generate_signing_key, save_signing_key

    private_pem, public_key = generate_signing_key()
    path = Path(args.output)
    try:
        save_signing_key(path, private_pem)
        pub = path.with_name(path.name + ".pub")
        pub.write_text(public_key + "\n", encoding="ascii")
    except FileExistsError as e:
        raise CliError(str(e)) from None
    print(f"private key: {path} (mode 0600; sign with `fnhost build DIR --sign {path}`)")
    print(f"public key:  {pub} (trust it with `fnhost serve --trusted-key {pub}`)")
    print(public_key)
    return 0


# client ------------------------------------------------------------------------------------------
class Client:
    """The HTTP API, with its JSON errors turned into `CliError` carrying the server's message.

    Namespaced paths (`/v1/functions/...`, `/v1/secrets/...`) go to `namespace` (api/paths.py)."""

    def __init__(self, url: str, token: str | None, namespace: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(30.0, read=600.0))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        from .api.paths import in_namespace, is_namespaced  # not at the top: see --max-body-bytes

        if self.namespace not in (None, "default") and is_namespaced(path):
            path = in_namespace(path).replace("{namespace}", self.namespace)
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise CliError(f"cannot reach fnhost at {self.url} ({e}); is `fnhost serve` running there?") from None
        if response.status_code >= 400:
            raise CliError(_error_text(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{error['code']}: {error['message']}"
        if error.get("invocation_id"):
            text += f" (invocation {error['invocation_id']}; see `fnhost logs`)"
        return text
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"


def _client(args: argparse.Namespace) -> Client:
    token = args.token or os.environ.get("FNHOST_TOKEN")
    if token and token.startswith("@"):
        token = _read_text(token[1:], "--token").strip()
    namespace = args.namespace or os.environ.get("FNHOST_NAMESPACE") or None
    return Client(args.url or os.environ.get("FNHOST_URL", DEFAULT_URL), token, namespace)


def cmd_deploy(args: argparse.Namespace) -> int:
    from .control import open_bundle

    source = Path(args.source)
    if source.is_dir():
        name, data = build_bundle(source, sign=args.sign, name=args.name)
    elif source.is_file():
        if args.sign:
            raise CliError("--sign applies when deploying a source directory; sign zips with `fnhost build`")
        data = source.read_bytes()
        try:
            name = open_bundle(data).manifest.name
        except FnhostError as e:
            raise CliError(f"{source}: {e}") from None
        if args.name and args.name != name:
            raise CliError(f"{source} is a bundle of {name!r}; rebuild from source with --name {args.name}")
    else:
        raise CliError(f"{source}: no such directory or bundle file")
    client = _client(args)
    with progress(f"uploading {name} ({len(data)} bytes) to {client.url}; the server validates and compiles it"):
        result = client.json("PUT", f"/v1/functions/{name}", content=data, headers={"Content-Type": "application/zip"})
    if result["created"]:
        print(f"deployed {name} version {result['version']} (sha256 {result['sha256'][:12]})")
    else:
        print(f"{name} unchanged: version {result['version']} is this same bundle")
    live = result.get("live_version")
    if live is not None and live != result["version"]:
        say(f"warning: {name} live is pinned to version {live}, so version {result['version']} does not serve "
            f"by default; `fnhost unpin {name}` makes live follow the newest version")  # fmt: skip
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = b""
    if args.data is not None:
        if args.data == "@-":
            payload = sys.stdin.buffer.read()
        elif args.data.startswith("@"):
            payload = _read_bytes(args.data[1:], "--data")
        else:
            payload = args.data.encode("utf-8")
    params = {"qualifier": args.qualifier} if args.qualifier else {}
    if args.async_:
        headers = {"X-Fnhost-Invocation-Type": "Event"}
        if args.idempotency_key:
            headers["X-Fnhost-Idempotency-Key"] = args.idempotency_key
        path = f"/v1/functions/{args.name}/invoke"
        accepted = _client(args).json("POST", path, content=payload, params=params, headers=headers)
        print(f"accepted {accepted['id']} ({accepted['status']}); status: fnhost invocation {accepted['id']}")
        return 0
    response = _client(args).request("POST", f"/v1/functions/{args.name}/invoke", content=payload, params=params)
    if args.verbose:
        h = response.headers
        say(
            f"invocation {h.get('x-fnhost-invocation-id')} version {h.get('x-fnhost-version')} "
            f"outcome {h.get('x-fnhost-outcome')}"
        )
    sys.stdout.buffer.write(response.content)
    if sys.stdout.isatty() and not response.content.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0


def cmd_invocation(args: argparse.Namespace) -> int:
    record = _listing(args, f"/v1/invocations/{args.id}")
    if record is None:
        return 0
    for key, value in record.items():
        if value is not None and key not in ("logs", "report"):
            print(f"{key}: {value}")
    return 0


def cmd_queues_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/queues")
    if listed is None:
        return 0
    queues = listed["queues"]
    rows = [("QUEUE", "DEPTH", "IN FLIGHT", "OLDEST")]
    rows += [(q["queue"], str(q["depth"]), str(q["in_flight"]), f"{q['oldest_age_s']:.1f}s") for q in queues]
    _table(rows)
    return 0


def cmd_queues_send(args: argparse.Namespace) -> int:
    body = _read_bytes(args.data[1:], "--data") if args.data.startswith("@") else args.data.encode("utf-8")
    print(_client(args).json("POST", f"/v1/queues/{args.queue}/messages", content=body)["id"])
    return 0


def cmd_queues_peek(args: argparse.Namespace) -> int:
    messages = _listing(args, f"/v1/queues/{args.queue}/messages", limit=args.limit)
    if messages is None:
        return 0
    rows = [("ID", "RECEIVES", "BODY")]
    rows += [(m["id"], str(m["receive_count"]), m["body"][:80]) for m in messages["messages"]]
    _table(rows)
    return 0


def cmd_queues_purge(args: argparse.Namespace) -> int:
    deleted = _client(args).json("DELETE", f"/v1/queues/{args.queue}/messages")["deleted"]
    print(f"purged {deleted} message(s) from {args.queue}")
    return 0


def cmd_triggers_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/triggers")
    if listed is None:
        return 0
    mappings = listed["queue"]
    rows = [("FUNCTION", "QUEUE", "BATCH", "WINDOW", "VISIBILITY", "MAX RECEIVES", "DLQ", "SOURCE")]
    for m in mappings:
        rows.append((
            m["function"], m["queue"], str(m["batch_size"]), f"{m['max_batching_window_ms']}ms",
            f"{m['visibility_timeout_s']}s", str(m["max_receive_count"]), m["dead_letter_queue"], m["source"],
        ))  # fmt: skip
    _table(rows)
    return 0


def cmd_schedules_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/schedules")
    if listed is None:
        return 0
    schedules = listed["schedules"]
    rows = [("FUNCTION", "NAME", "WHEN", "TIMEZONE", "NEXT (UTC)", "LAST OUTCOME", "FIRED", "SKIPPED")]
    for s in schedules:
        when = s["cron"] or f"every {s['rate_s']}s"
        due = s["next_due_ms"]
        next_due = _utc(due / 1000) if due else "-"
        rows.append((s["function"], s["name"], when, s["timezone"], next_due, s["last_outcome"] or "-",
                     str(s["fired"]), str(s["skipped"])))  # fmt: skip
    _table(rows)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/functions")
    if listed is None:
        return 0
    functions = listed["functions"]
    rows = [("NAME", "LATEST", "ALIASES")]
    for f in functions:
        aliases = ", ".join(f"{a['alias']}={a['version']}{'' if a['pinned'] else '*'}" for a in f["aliases"])
        rows.append((f["name"], str(f["latest_version"]), aliases))
    _table(rows)
    if functions:
        print("(* follows the newest version)")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    records = _listing(args, f"/v1/functions/{args.name}/invocations", limit=args.limit)
    if records is None:
        return 0
    for r in reversed(records["invocations"]):
        print(f"START RequestId: {r['id']} Version: {r['version']} Trigger: {r['trigger']}")
        if r["logs"]:
            print(r["logs"].rstrip("\n"))
        if r["error"]:
            print(f"ERROR {r['outcome']}: {r['error']}")
        print(r["report"])
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    listed = _listing(args, f"/v1/functions/{args.name}/versions")
    if listed is None:
        return 0
    client = _client(args)
    versions = listed["versions"]
    aliases: dict[int, list[str]] = {}
    for a in client.json("GET", f"/v1/functions/{args.name}")["aliases"]:
        aliases.setdefault(a["version"], []).append(a["alias"])
    rows = [("VERSION", "SHA256", "CREATED BY", "ALIASES")]
    for v in versions:
        names = ", ".join(aliases.get(v["version"], []))
        rows.append((str(v["version"]), v["sha256"][:12], v["created_by"] or "-", names))
    _table(rows)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).json("DELETE", f"/v1/functions/{args.name}")
    print(f"deleted {args.name}: every version, alias and unreferenced artifact")
    return 0


def cmd_alias_list(args: argparse.Namespace) -> int:
    function = _listing(args, f"/v1/functions/{args.name}")
    if function is None:
        return 0
    aliases = function["aliases"]
    rows = [("ALIAS", "VERSION", "PINNED")]
    for a in aliases:
        rows.append((a["alias"], str(a["version"]), "yes" if a["pinned"] else "no (follows newest)"))
    _table(rows)
    return 0


def cmd_alias_rm(args: argparse.Namespace) -> int:
    result = _client(args).json("DELETE", f"/v1/functions/{args.name}/aliases/{args.alias}")
    if args.alias == "live":
        print(f"{args.name}:live unpinned: follows the newest version ({result['version']})")
    else:
        print(f"{args.name}:{args.alias} removed")
    return 0


def cmd_unpin(args: argparse.Namespace) -> int:
    args.alias = "live"
    return cmd_alias_rm(args)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Pin live to VERSION, or to the version before the one live serves now."""
    client = _client(args)
    version = args.version
    if version is None:
        live = next(a for a in client.json("GET", f"/v1/functions/{args.name}")["aliases"] if a["alias"] == "live")
        older = [v["version"] for v in client.json("GET", f"/v1/functions/{args.name}/versions")["versions"]
                 if v["version"] < live["version"]]  # fmt: skip
        if not older:
            raise CliError(f"{args.name}: live serves version {live['version']}, there is no older one to roll back to")
        version = max(older)
    client.json("PUT", f"/v1/functions/{args.name}/aliases/live", json={"version": version})
    print(f"{args.name}:live -> version {version} (pinned; `fnhost unpin {args.name}` follows deploys again)")
    return 0


def cmd_alias_set(args: argparse.Namespace) -> int:
    _client(args).json("PUT", f"/v1/functions/{args.name}/aliases/{args.alias}", json={"version": args.version})
    print(f"{args.name}:{args.alias} -> version {args.version}")
    return 0


def cmd_secrets_set(args: argparse.Namespace) -> int:
    value = args.value
    if value is None:
        if sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"value of secret {args.secret}: ")
        else:
            value = sys.stdin.read().rstrip("\n")
    _client(args).json("PUT", f"/v1/secrets/{args.secret}", json={"value": value})
    print(f"secret {args.secret} set")
    return 0


def cmd_secrets_rm(args: argparse.Namespace) -> int:
    _client(args).json("DELETE", f"/v1/secrets/{args.secret}")
    print(f"secret {args.secret} deleted")
    return 0


def cmd_secrets_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/secrets")
    for name in [] if listed is None else listed["secrets"]:
        print(name)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    client = _client(args)
    body: dict[str, Any] = {"name": args.name, "scopes": args.scope, "functions": args.function or None}
    if client.namespace is not None:
        body["namespace"] = client.namespace
    if args.may_grant:
        body["may_grant"] = args.may_grant
    key = client.json("POST", "/v1/keys", json=body)
    where = f"namespace {key['namespace']}" if key["namespace"] else "global"
    say(f"created key {key['key_id']} ({', '.join(key['scopes'])}; {where}); the token is shown this once:")
    print(key["token"])
    return 0


def _utc(epoch_s: float) -> str:
    """A stored time (epoch seconds) as the CLI's tables show it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s))


def cmd_keys_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/keys")
    if listed is None:
        return 0
    rows = [("ID", "NAME", "NAMESPACE", "SCOPES", "FUNCTIONS", "MAY GRANT", "CREATED", "REVOKED")]
    for k in listed["keys"]:
        functions = ",".join(k["functions"]) if k["functions"] is not None else "*"
        rows.append(
            (
                k["key_id"],
                k["name"],
                k["namespace"] or "(global)",
                ",".join(k["scopes"]),
                functions,
                ",".join(k["may_grant"]) or "-",
                _utc(k["created_at"]),
                "-" if k["revoked_at"] is None else _utc(k["revoked_at"]),
            )
        )
    _table(rows)
    return 0


def cmd_shares_create(args: argparse.Namespace) -> int:
    body = {"kind": args.kind, "name": args.resource, "with": args.with_}
    share = _client(args).json("POST", "/v1/shares", json=body)
    print(f"shared {share['kind']} {share['reference']} with {share['grantee']} (share {share['id']})")
    return 0


def cmd_shares_list(args: argparse.Namespace) -> int:
    listed = _listing(args, "/v1/shares")
    if listed is None:
        return 0
    rows = [("ID", "KIND", "RESOURCE", "WITH", "CREATED BY", "REVOKED")]
    for s in listed["shares"]:
        revoked = "-" if s["revoked_at"] is None else _utc(s["revoked_at"])
        rows.append((s["id"], s["kind"], f"{s['owner']}/{s['name']}", s["grantee"], s["created_by"] or "-", revoked))
    _table(rows)
    return 0


def cmd_shares_revoke(args: argparse.Namespace) -> int:
    _client(args).json("DELETE", f"/v1/shares/{args.share_id}")
    print(f"share {args.share_id} revoked")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    _client(args).json("DELETE", f"/v1/keys/{args.key_id}")
    print(f"key {args.key_id} revoked")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    result = _client(args).json("GET", "/v1/audit/verify")
    if result["ok"]:
        print(f"audit log intact: {result['checked']} entries, hash chain verified")
        return 0
    raise CliError(f"audit log tampered with: {result['reason']} ({result['checked']} entries verified before it)")


def cmd_db_copy(args: argparse.Namespace) -> int:
    from .dbcopy import copy_data_dir

    report = copy_data_dir(args.data_dir, args.to)
    total = sum(report.rows.values())
    print(f"copied {total} rows from {len(report.rows)} tables and {report.binaries} binaries; "
          f"the audit chain verifies ({report.audit_entries} entries)")  # fmt: skip
    for table, count in sorted(report.rows.items()):
        print(f"  {table}: {count}")
    print("start every node with --database and this data dir's master key (FNHOST_MASTER_KEY)")
    return 0


# plumbing ----------------------------------------------------------------------------------------
def _listing(args: argparse.Namespace, path: str, **params: Any) -> Any:
    """GET a listing; with --json print it as the API answered and return None (the caller is done)."""
    data = _client(args).json("GET", path, params=params or None)
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
        return None
    return data


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _read_bytes(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"{option} @{path}: {e.strerror}") from None


def _read_text(path: str, option: str) -> str:
    return _read_bytes(path, option).decode("utf-8")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, got {text}")
    return value


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fnhost")
    except PackageNotFoundError:  # run from a checkout without installing
        return "(not installed)"


def parser() -> argparse.ArgumentParser:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--url", help=f"the server (default: $FNHOST_URL or {DEFAULT_URL})")
    client.add_argument("--token", help="API key, or @FILE holding it (default: $FNHOST_TOKEN)")
    client.add_argument(
        "-n", "--namespace", help="the namespace to work in (default: $FNHOST_NAMESPACE or default)"
    )
    client.add_argument("--json", action="store_true", help="listings: print the API's JSON instead of a table")

    p = argparse.ArgumentParser(prog="fnhost", description="Serverless WebAssembly functions.")
    p.add_argument("--version", action="version", version=f"fnhost {_package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = argparse.ArgumentParser(add_help=False)  # the options of serve and dev
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=f"database, wasm and keys (default {DEFAULT_DATA_DIR})")
    s.add_argument("--cache-dir", help="compiled-code cache (default DATA_DIR/compiled)")
    s.add_argument(
        "--database",
        default=os.environ.get("FNHOST_DATABASE_URL") or None,
        metavar="postgresql://USER@HOST:PORT/DB",
        help="a shared PostgreSQL for every table and binary, so several nodes serve one cluster "
        "(default $FNHOST_DATABASE_URL; unset: SQLite in DATA_DIR)",
    )
    s.add_argument(
        "--processes",
        type=_positive,
        default=1,
        help="server processes sharing the port (default 1); --workers, --global-concurrency and each "
        "function's max_concurrency then apply per process",
    )
    s.add_argument(
        "--workers", type=_positive, default=os.cpu_count() or 2, help="threads running invocations (per process)"
    )
    s.add_argument(
        "--global-concurrency",
        type=_positive,
        default=64,
        help="invocations admitted at once, queued or running; more get 429 (default 64, per process)",
    )
    s.add_argument(
        "--function-share",
        type=_fraction,
        default=0.5,
        help="the most of --workers and --global-concurrency one function may hold (default 0.5)",
    )
    s.add_argument(
        "--namespace-share",
        type=_fraction,
        default=1.0,
        help="the most of --workers and --global-concurrency one namespace's functions may hold together "
        "(default 1.0: no namespace limit; e.g. 0.5 so one team cannot fill the server)",
    )
    s.add_argument(
        "--max-pinned",
        type=_positive,
        default=16,
        help="threads all guests together may keep blocked past their deadline (default 16)",
    )
    s.add_argument(
        "--max-pinned-per-function",
        type=_positive,
        default=2,
        help="threads one function may keep blocked past its deadline; then it is throttled (default 2)",
    )
    s.add_argument(
        "--max-warm-mb",
        type=_positive,
        default=1024,
        help="memory idle warm instances may hold, all functions together, each counted at its "
        "limits.memory_mb (default 1024)",
    )
    # no default here: create_app's applies (importing the api here would import prometheus_client
    # before _serve_processes has set PROMETHEUS_MULTIPROC_DIR)
    s.add_argument("--max-body-bytes", type=_positive, help="largest invoke payload or function-URL body")
    s.add_argument(
        "--max-body-bytes-in-flight",
        type=_positive,
        help="request-body bytes the server holds at once, all requests together; more get 503 (default 128 MiB)",
    )
    s.add_argument(
        "--body-timeout", type=float, default=30.0, help="seconds a request body may take to arrive (default 30)"
    )
    s.add_argument(
        "--max-blob-bytes",
        type=_positive,
        default=1 << 30,
        help="largest blob object, from the API or a guest (default 1 GiB); an upload's body may take "
        "--body-timeout plus 1 s per MiB",
    )
    s.add_argument(
        "--read-timeout",
        type=float,
        default=30.0,
        help="seconds a connection may send nothing, in headers or body, before it is closed (default 30)",
    )
    s.add_argument("--bundles", metavar="DIR", help="deploy every *.zip in DIR at start")
    s.add_argument("--read-only", action="store_true", help="serve functions only: no control-plane API")
    s.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        metavar="KEY",
        help="ed25519:... or a .pub file; when given, every bundle must be signed by one",
    )
    s.add_argument("--graceful-timeout", type=float, default=10.0, help="seconds to finish requests at stop")
    s.add_argument("--access-log", action="store_true", help="log every request to stdout")
    s.add_argument(
        "--no-triggers", action="store_true", help="do not run async invokes, queue triggers or schedules here"
    )
    sub.add_parser("serve", parents=[s], help="run the HTTP server (Hypercorn)").set_defaults(func=cmd_serve)
    dev = sub.add_parser("dev", parents=[s], help="serve with example guests built and deployed at start")
    dev.add_argument(
        "--guests",
        action="append",
        metavar="DIR",
        help="a guest source directory to build and deploy (repeatable; default guests/rust/*)",
    )
    dev.set_defaults(func=cmd_serve)

    b = sub.add_parser("build", help="build a guest's source directory into a bundle zip")
    b.add_argument("dir")
    b.add_argument(
        "-o",
        "--output",
        help="bundle path (default NAME.zip, or the cache's bundles/ when run inside DIR); *.wasm: the bare binary",
    )
    b.add_argument("--cache-dir", type=Path, help="build cache (default $FNHOST_CACHE_DIR or ~/.cache/fnhost)")
    b.add_argument("--sign", metavar="KEYFILE", help="sign with this Ed25519 private key")
    b.set_defaults(func=cmd_build)

    n = sub.add_parser("new", help="write a new function (HTTP route, event handler, kv, a test) into DIR")
    n.add_argument("language", choices=["python", "js", "rust", "go", "c"])
    n.add_argument("dir")
    n.add_argument("--name", help="the function's name (default: DIR's name)")
    n.set_defaults(func=cmd_new)

    d = sub.add_parser("deploy", parents=[client], help="deploy a source directory (built first) or a bundle zip")
    d.add_argument("source", metavar="DIR|BUNDLE.zip")
    d.add_argument("--name", help="deploy a source directory under this name instead of its manifest's")
    d.add_argument("--sign", metavar="KEYFILE", help="sign the bundle built from DIR")
    d.set_defaults(func=cmd_deploy)

    i = sub.add_parser("invoke", parents=[client], help="invoke a function's event handler; prints the output")
    i.add_argument("name")
    i.add_argument("--data", help="payload: text/JSON, @FILE, or @- for stdin")
    i.add_argument("--qualifier", help="version number or alias (default live)")
    i.add_argument("-v", "--verbose", action="store_true", help="print invocation id, version, outcome")
    i.add_argument("--async", dest="async_", action="store_true", help="store the event and return at once (202)")
    i.add_argument("--idempotency-key", help="with --async: a repeat with this key returns the same invocation")
    i.set_defaults(func=cmd_invoke)

    sub.add_parser("list", parents=[client], help="list functions").set_defaults(func=cmd_list)

    inv = sub.add_parser("invocation", parents=[client], help="one invocation, or an async invoke's status")
    inv.add_argument("id")
    inv.set_defaults(func=cmd_invocation)

    q = sub.add_parser("queues", help="durable queues").add_subparsers(dest="queues_command", required=True)
    q.add_parser("list", parents=[client], help="depth, in flight, oldest age").set_defaults(func=cmd_queues_list)
    qs = q.add_parser("send", parents=[client], help="publish a message; prints its id")
    qs.add_argument("queue")
    qs.add_argument("data", help="the body: text, or @FILE")
    qs.set_defaults(func=cmd_queues_send)
    qp = q.add_parser("peek", parents=[client], help="the oldest messages, without claiming them")
    qp.add_argument("queue")
    qp.add_argument("--limit", type=_positive, default=10)
    qp.set_defaults(func=cmd_queues_peek)
    qx = q.add_parser("purge", parents=[client], help="delete every message of a queue")
    qx.add_argument("queue")
    qx.set_defaults(func=cmd_queues_purge)

    tr = sub.add_parser("triggers", help="queue triggers").add_subparsers(dest="triggers_command", required=True)
    tr.add_parser("list", parents=[client], help="queue -> function mappings").set_defaults(func=cmd_triggers_list)
    sc = sub.add_parser("schedules", help="schedules").add_subparsers(dest="schedules_command", required=True)
    sc.add_parser("list", parents=[client], help="schedules and their ticks").set_defaults(func=cmd_schedules_list)

    lg = sub.add_parser("logs", parents=[client], help="recent invocations of a function: logs and REPORT lines")
    lg.add_argument("name")
    lg.add_argument("--limit", type=_positive, default=20)
    lg.set_defaults(func=cmd_logs)

    a = sub.add_parser("alias", help="aliases").add_subparsers(dest="alias_command", required=True)
    aset = a.add_parser("set", parents=[client], help="point ALIAS of NAME at VERSION (pins it)")
    aset.add_argument("name")
    aset.add_argument("alias")
    aset.add_argument("version", type=int)
    aset.set_defaults(func=cmd_alias_set)
    alist = a.add_parser("list", parents=[client], help="NAME's aliases (e.g. fnhost alias list hello)")
    alist.add_argument("name")
    alist.set_defaults(func=cmd_alias_list)
    arm = a.add_parser("rm", parents=[client], help="remove ALIAS of NAME; `live` is unpinned instead")
    arm.add_argument("name")
    arm.add_argument("alias")
    arm.set_defaults(func=cmd_alias_rm)
    up = sub.add_parser("unpin", parents=[client], help="make live follow the newest version (fnhost unpin hello)")
    up.add_argument("name")
    up.set_defaults(func=cmd_unpin)
    rb = sub.add_parser(
        "rollback", parents=[client], help="pin live to VERSION, default the one before it (fnhost rollback hello)"
    )
    rb.add_argument("name")
    rb.add_argument("version", type=int, nargs="?")
    rb.set_defaults(func=cmd_rollback)
    vs = sub.add_parser("versions", parents=[client], help="NAME's versions and their aliases (fnhost versions hello)")
    vs.add_argument("name")
    vs.set_defaults(func=cmd_versions)
    dl = sub.add_parser("delete", parents=[client], help="delete a function with every version (fnhost delete hello)")
    dl.add_argument("name")
    dl.set_defaults(func=cmd_delete)

    sec = sub.add_parser("secrets", help="secrets").add_subparsers(dest="secrets_command", required=True)
    sset = sec.add_parser("set", parents=[client], help="set a secret (value from stdin if omitted)")
    sset.add_argument("secret")
    sset.add_argument("value", nargs="?")
    sset.set_defaults(func=cmd_secrets_set)
    srm = sec.add_parser("rm", parents=[client], help="delete a secret")
    srm.add_argument("secret")
    srm.set_defaults(func=cmd_secrets_rm)
    sec.add_parser("list", parents=[client], help="list secret names").set_defaults(func=cmd_secrets_list)

    k = sub.add_parser("keys", help="API keys and signing keys").add_subparsers(dest="keys_command", required=True)
    kc = k.add_parser("create", parents=[client], help="create an API key; prints its token")
    kc.add_argument("--name", required=True, help="who or what uses the key")
    kc.add_argument("--scope", action="append", required=True, choices=["admin", "deploy", "invoke"])
    kc.add_argument("--function", action="append", help="limit deploy/invoke to this function (repeatable)")
    kc.add_argument(
        "--may-grant",
        action="append",
        metavar="KIND:NAME",
        help="what its deploys may grant: kv:, secret: or queue: and a name, * and ? allowed (repeatable); "
        "admins may grant anything of their namespace",
    )
    kc.set_defaults(func=cmd_keys_create)
    k.add_parser("list", parents=[client], help="list API keys").set_defaults(func=cmd_keys_list)
    kr = k.add_parser("revoke", parents=[client], help="revoke an API key")
    kr.add_argument("key_id")
    kr.set_defaults(func=cmd_keys_revoke)
    kg = k.add_parser("gen-signing", help="make an Ed25519 bundle-signing key pair (local)")
    kg.add_argument("-o", "--output", default="signing.key", help="private key file (default signing.key)")
    kg.set_defaults(func=cmd_gen_signing)

    sh = sub.add_parser("shares", help="share a resource with another namespace").add_subparsers(
        dest="shares_command", required=True
    )
    shc = sh.add_parser("create", parents=[client], help="share one kv bucket, secret or queue of --namespace")
    shc.add_argument("kind", choices=["kv", "secret", "queue"])
    shc.add_argument("resource", help="its name in --namespace")
    shc.add_argument("--with", dest="with_", required=True, metavar="NAMESPACE", help="the namespace to share with")
    shc.set_defaults(func=cmd_shares_create)
    sh.add_parser("list", parents=[client], help="shares --namespace made or received").set_defaults(
        func=cmd_shares_list
    )
    shr = sh.add_parser("revoke", parents=[client], help="revoke a share (applies at the next call)")
    shr.add_argument("share_id")
    shr.set_defaults(func=cmd_shares_revoke)

    au = sub.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command", required=True)
    au.add_parser("verify", parents=[client], help="verify the hash chain").set_defaults(func=cmd_audit_verify)

    db = sub.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    dbc = db.add_parser(
        "copy",
        help="copy a SQLite data dir into an empty PostgreSQL, in one transaction "
        "(e.g. fnhost db copy --data-dir .fnhost --to postgresql://fnhost@db/fnhost)",
    )
    dbc.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=f"the source (default {DEFAULT_DATA_DIR})")
    dbc.add_argument("--to", required=True, metavar="postgresql://USER@HOST:PORT/DB", help="the empty target")
    dbc.set_defaults(func=cmd_db_copy)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (CliError, FnhostError) as e:
        say(f"fnhost: error: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    return code
