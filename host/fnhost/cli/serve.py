"""`fnhost serve` and `fnhost dev`: the HTTP server (Hypercorn), alone or as `--processes N`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from ..errors import FnhostError
from ._common import DEFAULT_DATA_DIR, FRACTION, POSITIVE, CliError, command, progress, read_text, say
from .build import build_bundle

LISTEN_BACKLOG = 2048
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of serve and dev."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True, help="address to bind"),
        click.option("--port", type=int, default=8080, show_default=True),
        click.option("--data-dir", default=DEFAULT_DATA_DIR, show_default=True, help="database, wasm and keys"),
        click.option("--cache-dir", help="compiled-code cache (default DATA_DIR/compiled)"),
        click.option(
            "--database",
            envvar="FNHOST_DATABASE_URL",
            metavar="postgresql://USER@HOST:PORT/DB",
            help="a shared PostgreSQL for every table and binary, so several nodes serve one cluster "
            "(default $FNHOST_DATABASE_URL; unset: SQLite in DATA_DIR)",
        ),
        click.option(
            "--processes",
            type=POSITIVE,
            default=1,
            help="server processes sharing the port (default 1); --workers, --global-concurrency and each "
            "function's max_concurrency then apply per process",
        ),
        click.option(
            "--workers", type=POSITIVE, default=os.cpu_count() or 2, help="threads running invocations (per process)"
        ),
        click.option(
            "--global-concurrency",
            type=POSITIVE,
            default=64,
            help="invocations admitted at once, queued or running; more get 429 (default 64, per process)",
        ),
        click.option(
            "--function-share",
            type=FRACTION,
            default=0.5,
            help="the most of --workers and --global-concurrency one function may hold (default 0.5)",
        ),
        click.option(
            "--namespace-share",
            type=FRACTION,
            default=1.0,
            help="the most of --workers and --global-concurrency one namespace's functions may hold together "
            "(default 1.0: no namespace limit; e.g. 0.5 so one team cannot fill the server)",
        ),
        click.option(
            "--max-pinned",
            type=POSITIVE,
            default=16,
            help="threads all guests together may keep blocked past their deadline (default 16)",
        ),
        click.option(
            "--max-pinned-per-function",
            type=POSITIVE,
            default=2,
            help="threads one function may keep blocked past its deadline; then it is throttled (default 2)",
        ),
        click.option(
            "--max-warm-mb",
            type=POSITIVE,
            default=1024,
            help="memory idle warm instances may hold, all functions together, each counted at its "
            "limits.memory_mb (default 1024)",
        ),
        # no default here: create_app's applies (importing the api here would import prometheus_client
        # before --processes has set PROMETHEUS_MULTIPROC_DIR)
        click.option("--max-body-bytes", type=POSITIVE, help="largest invoke payload or function-URL body"),
        click.option(
            "--max-body-bytes-in-flight",
            type=POSITIVE,
            help="request-body bytes the server holds at once, all requests together; more get 503 (default 128 MiB)",
        ),
        click.option(
            "--body-timeout", type=float, default=30.0, help="seconds a request body may take to arrive (default 30)"
        ),
        click.option(
            "--read-timeout",
            type=float,
            default=30.0,
            help="seconds a connection may send nothing, in headers or body, before it is closed (default 30)",
        ),
        click.option("--bundles", metavar="DIR", help="deploy every *.zip in DIR at start"),
        click.option("--read-only", is_flag=True, help="serve functions only: no control-plane API"),
        click.option(
            "--trusted-key",
            multiple=True,
            metavar="KEY",
            help="ed25519:... or a .pub file; when given, every bundle must be signed by one",
        ),
        click.option("--graceful-timeout", type=float, default=10.0, help="seconds to finish requests at stop"),
        click.option("--access-log", is_flag=True, help="log every request to stdout"),
        click.option("--no-triggers", is_flag=True, help="do not run async invokes, queue triggers or schedules here"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@command(
    name="serve",
    example="fnhost serve --port 8080 --data-dir .fnhost\nfnhost serve --processes 2 --database postgresql://fnhost@db/fnhost",
)
@serve_options
def serve(**options: Any) -> int:
    """Run the HTTP server (Hypercorn)."""
    return cmd_serve(SimpleNamespace(command="serve", guests=None, **options))


@command(name="dev", example="fnhost dev --guests guests/rust/hello --guests guests/python/counter")
@serve_options
@click.option(
    "--guests",
    multiple=True,
    metavar="DIR",
    help="a guest source directory to build and deploy (repeatable; default guests/rust/*)",
)
def dev(**options: Any) -> int:
    """Serve with example guests built and deployed at start."""
    return cmd_serve(SimpleNamespace(command="dev", **options))


def cmd_serve(args: Any) -> int:
    trusted = [_public_key_arg(k) for k in args.trusted_key]
    if args.processes > 1:
        return _serve_processes(args, trusted)
    _serve_host(args, trusted, run_triggers=not args.no_triggers)
    say("fnhost stopped")
    return 0


def _serve_host(args: Any, trusted: list[str], *, run_triggers: bool, listener_fd: int | None = None) -> None:
    """One server process: a Host, its Triggers and the app, served by Hypercorn until a stop signal.

    Alone (`listener_fd` None) it does the start work first and binds --host:--port itself; as one
    of `--processes N` it serves the parent's socket and names itself on every response.
    """
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from ..api import create_app
    from ..api.middleware import ProcessIdMiddleware
    from ..host import Host
    from ..triggers import Triggers

    host = Host(
        Path(args.data_dir),
        cache_dir=args.cache_dir,
        database=args.database,
        max_pinned_per_function=args.max_pinned_per_function,
        max_pinned=args.max_pinned,
        max_warm_mb=args.max_warm_mb,
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


def _start_work(host: Any, args: Any, trusted: list[str]) -> None:
    """What a server does once at start: the bootstrap admin key, then `--bundles` / `dev` deploys."""
    from ..control import ApiKeys

    admin_file = ApiKeys(host.db).ensure_bootstrap_admin(Path(args.data_dir))
    if admin_file is not None:
        say(f"created the first admin API key; its token is in {admin_file} (mode 0600)")
        say(f"  use it with: export FNHOST_TOKEN=$(cat {admin_file})")
    if args.bundles:
        deploy_at_start(host, _bundle_files(Path(args.bundles)), trusted, created_by="serve --bundles")
    if args.command == "dev":
        sources = [(str(d), _builder_of(d)) for d in _guest_dirs(args.guests)]
        deploy_at_start(host, sources, trusted, created_by="dev", skip_failures=True)


def _serving_banner(args: Any) -> str:
    mode = "read-only" if args.read_only else "read-write"
    processes = f", {args.processes} processes" if args.processes > 1 else ""
    return (
        f"fnhost serving {Path(args.data_dir)} on http://{args.host}:{args.port} "
        f"({mode}, {args.workers} workers{processes})"
    )


def _serve_processes(args: Any, trusted: list[str]) -> int:
    """`--processes N`: the start work in a passing child, then N server children on the port.

    This process never makes a Host itself: compiling leaves Wasmtime's native worker threads
    behind, and a forked child would wait forever on them. Every child runs the triggers (queue
    receives, async claims and schedule ticks are claimed in the database, so they compete safely).
    Metrics: prometheus_client's multiprocess mode (see api/metrics.py).
    """
    import tempfile

    from ..processes import Supervisor, listen

    if "prometheus_client" in sys.modules:  # its value class is chosen when it is imported
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    metrics_dir = tempfile.mkdtemp(prefix="fnhost-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        with Supervisor(say) as supervisor:

            def start_work() -> int:
                from ..host import Host

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


async def _serve_until_signal(serve: Any, app: Any, config: Any, on_stop: Callable[[], None] = lambda: None) -> None:
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
    from ..control import AuditLog, open_bundle, verify_bundle

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
    from ..build import sdk_root

    return sorted(d for d in (sdk_root().parent / "guests" / "rust").iterdir() if (d / "fnhost.toml").is_file())


def _builder_of(src: Path) -> Callable[[], bytes]:
    return lambda: build_bundle(src)[1]


def _public_key_arg(value: str) -> str:
    """`ed25519:<base64>`, or a file holding one (as `fnhost keys gen-signing` writes *.pub)."""
    from ..control import parse_public_key

    key = value if value.startswith("ed25519:") else read_text(value, "--trusted-key").strip()
    try:
        parse_public_key(key)
    except ValueError as e:
        raise CliError(f"--trusted-key {value}: {e}") from None
    return key


COMMANDS = [serve, dev]
