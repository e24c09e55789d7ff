"""`fnhost serve` and `fnhost dev`: the HTTP server (Hypercorn), alone or as `--processes N`."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..chains import DEFAULT_MAX_CHAIN_DEPTH
from ..errors import FnhostError
from ._common import DEFAULT_DATA_DIR, FRACTION, POSITIVE, CliError, command, progress, read_text, say

if TYPE_CHECKING:  # fnhost.server imports the API, and so prometheus_client: not before --processes sets it up
    from ..server import Server, ServerConfig

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
            "--egress",
            type=click.Choice(["off", "allowlist", "public"]),
            default="allowlist",
            show_default=True,
            help="outbound HTTP of functions: allowlist = only to the origins their manifest grants "
            "([grants] http); public = also to any origin on a public address; off = none",
        ),
        click.option(
            "--egress-ca-file",
            metavar="PEM",
            help="CA certificates functions' HTTPS requests also trust (e.g. an internal CA)",
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
        click.option(
            "--isolate/--no-isolate",
            default=True,
            show_default=True,
            help="run demoted functions (those that recently hit a limit or ran long) in a second process at a "
            "lower CPU priority, so their memory traffic and CPU cannot slow the others (docs/security.md)",
        ),
        click.option(
            "--max-log-memory-mb",
            type=POSITIVE,
            default=256,
            help="log lines all running invocations may hold in memory together; past it lines are dropped "
            "with a marker (default 256)",
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
            "--max-blob-bytes",
            type=POSITIVE,
            default=1 << 30,
            help="largest blob object, from the API or a guest (default 1 GiB); an upload may take "
            "--body-timeout plus 1 s per MiB",
        ),
        click.option(
            "--max-chain-depth",
            type=POSITIVE,
            default=DEFAULT_MAX_CHAIN_DEPTH,
            show_default=True,
            help="the longest chain of functions triggering each other (through queues, blob triggers or "
            "their function URLs) before it is taken for a loop and stopped (docs/events.md)",
        ),
        click.option(
            "--read-timeout",
            type=float,
            default=None,
            help="seconds a connection may send nothing before it is closed, even while its response is "
            "pending (default: none; heads are bounded by the 5 s keep-alive timeout, bodies by --body-timeout)",
        ),
        click.option(
            "--usage-hourly-days", type=POSITIVE, default=14, help="days hourly usage rollups are kept (default 14)"
        ),
        click.option(
            "--usage-daily-days", type=POSITIVE, default=400, help="days daily usage rollups are kept (default 400)"
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
    example="fnhost serve --port 8080 --data-dir .fnhost\n"
    "fnhost serve --processes 2 --database postgresql://fnhost@db/fnhost",
)
@serve_options
def serve(**options: Any) -> int:
    """Run the HTTP server (Hypercorn)."""
    return run_server(options)


@command(
    name="dev",
    example="cd guests/apps/shop && fnhost dev\nfnhost dev --app shop/fnhost.app.toml --stage dev\n"
    "fnhost dev --guests guests/rust/hello --guests guests/python/counter",
)
@serve_options
@click.option("--app", "app_file", metavar="FILE", help="the app file (default ./fnhost.app.toml when there)")
@click.option("--stage", help="the app's stage (default: dev, when the app declares one)")
@click.option(
    "--guests",
    multiple=True,
    metavar="DIR",
    help="instead of an app file: a guest source directory (repeatable; default ./ when it holds a "
    "fnhost.toml, else guests/rust/*)",
)
def dev(app_file: str | None, stage: str | None, guests: tuple[str, ...], **options: Any) -> int:
    """Serve an app and redeploy what you edit (docs/apps.md).

    Deploys the app's functions with `fnhost up` against this server, sets the secrets of the
    git-ignored .fnhost-secrets.toml, then rebuilds and redeploys every function whose sources
    change; a build that fails is printed and the last good version keeps serving."""
    if options["processes"] > 1:
        raise CliError("fnhost dev runs one server process; drop --processes")
    return run_server(options, lambda server: _start_dev_loop(server, app_file, stage, list(guests)))


def _start_dev_loop(server: Server, app_file: str | None, stage: str | None, guests: list[str]) -> None:
    """The watch loop (fnhost.dev) on its own thread: once the server answers, it deploys over the HTTP
    API with the data dir's admin key (else $FNHOST_TOKEN), and again after every edit, until the
    server stops."""
    import threading

    from ..appfile import APP_FILE, app_of_guests, load_app
    from ..client import ApiError, Client
    from ..dev import DevLoop

    app_path = Path(app_file or APP_FILE)
    load = None
    if guests or (app_file is None and not app_path.is_file()):
        if stage is not None:
            raise CliError("--stage needs an app file (--app FILE, or ./fnhost.app.toml)")
        dirs = [Path(".")] if not guests and Path("fnhost.toml").is_file() else _guest_dirs(guests)
        load = lambda: app_of_guests(dirs)  # noqa: E731
    elif stage is None and "dev" in load_app(app_path).stages:
        stage = "dev"
        say(f"fnhost dev: stage dev of {app_path} (--stage chooses another)")
    token_file = Path(server.config.data_dir) / "admin.key"
    token = token_file.read_text().strip() if token_file.is_file() else os.environ.get("FNHOST_TOKEN")
    if not token:
        raise CliError(f"fnhost dev deploys with an admin key: there is none in {token_file} and FNHOST_TOKEN is unset")
    bind = server.config.bind
    address = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    client = Client(f"http://{address}:{server.config.port}", token)
    loop = DevLoop(app_path, client, stage=stage, say=say, load=load)
    stop = server.stopping  # set when the server begins to stop

    def run() -> None:
        while not stop.is_set():  # the server listens once this thread runs
            try:
                client.health()
                break
            except ApiError:
                stop.wait(0.1)
        loop.run(stop)
        client.close()

    threading.Thread(target=run, name="fnhost-dev", daemon=True).start()


StartWork = Callable[["Server"], None]


def run_server(options: dict[str, Any], then: StartWork | None = None) -> int:
    """`serve`'s options as a `ServerConfig`; serve it (after the start work, and `then`) until a stop signal."""
    config = server_config(options)
    processes, bundles = options["processes"], options["bundles"]

    def start_work(server: Server) -> None:
        """Once per start: the bootstrap admin key, then `--bundles`, then `then`."""
        admin_file = server.ensure_bootstrap_admin()
        if admin_file is not None:
            say(f"created the first admin API key; its token is in {admin_file} (mode 0600)")
            say(f"  use it with: export FNHOST_TOKEN=$(cat {admin_file})")
        if bundles:
            deploy_at_start(server, _bundle_files(Path(bundles)), created_by="serve --bundles")
        if then is not None:
            then(server)

    if processes > 1:
        return _serve_processes(config, processes, start_work)
    from ..server import Server

    with Server(config) as server:
        start_work(server)
        say(_serving_banner(config, processes))
        server.run()
        _report_stop(server)
    say("fnhost stopped")
    return 0


def server_config(options: dict[str, Any]) -> ServerConfig:
    from ..egress import EgressConfig
    from ..server import ServerConfig

    return ServerConfig(
        data_dir=Path(options["data_dir"]),
        cache_dir=options["cache_dir"],
        database=options["database"] or None,
        bind=options["host"],
        port=options["port"],
        workers=options["workers"],
        global_concurrency=options["global_concurrency"],
        function_share=options["function_share"],
        namespace_share=options["namespace_share"],
        max_pinned=options["max_pinned"],
        max_pinned_per_function=options["max_pinned_per_function"],
        max_warm_mb=options["max_warm_mb"],
        isolate=options["isolate"],
        max_log_memory_mb=options["max_log_memory_mb"],
        max_blob_bytes=options["max_blob_bytes"],
        max_body_bytes=options["max_body_bytes"],
        max_body_bytes_in_flight=options["max_body_bytes_in_flight"],
        body_timeout_s=options["body_timeout"],
        read_timeout_s=options["read_timeout"],
        graceful_timeout_s=options["graceful_timeout"],
        read_only=options["read_only"],
        trusted_keys=tuple(_public_key_arg(k) for k in options["trusted_key"]),
        run_triggers=not options["no_triggers"],
        access_log=options["access_log"],
        usage_hourly_days=options["usage_hourly_days"],
        usage_daily_days=options["usage_daily_days"],
        egress=EgressConfig(mode=options["egress"], ca_file=options["egress_ca_file"]),
        max_chain_depth=options["max_chain_depth"],
    )


def _report_stop(server: Server) -> None:
    if not server.stopped_clean:
        say(f"some trigger workers were still running after {server.config.graceful_timeout_s:g} s")


def _serving_banner(config: ServerConfig, processes: int) -> str:
    mode = "read-only" if config.read_only else "read-write"
    many = f", {processes} processes" if processes > 1 else ""
    return (
        f"fnhost serving {config.data_dir} on http://{config.bind}:{config.port} "
        f"({mode}, {config.workers} workers{many})"
    )


def _serve_processes(config: ServerConfig, processes: int, start_work: StartWork) -> int:
    """`--processes N`: the start work in a passing child, then N server children on the port.

    This process never makes a Host itself: compiling leaves Wasmtime's native worker threads
    behind, and a forked child would wait forever on them. Every child runs the triggers (queue
    receives, async claims and schedule ticks are claimed in the database, so they compete safely).
    Metrics: prometheus_client's multiprocess mode (see api/metrics.py).
    """
    import tempfile

    from ..processes import Supervisor, listen
    from ..server import LISTEN_BACKLOG

    if "prometheus_client" in sys.modules:  # its value class is chosen when it is imported
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    metrics_dir = tempfile.mkdtemp(prefix="fnhost-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        with Supervisor(say) as supervisor:

            def once() -> int:
                from ..server import Server

                with Server(config) as server:
                    return _reported(lambda: start_work(server))

            code = supervisor.run_once(once)
            if supervisor.stop_signal is not None:
                say("fnhost stopped")
                return 0
            if code != 0:
                return code
            try:
                # one socket per process: the kernel spreads connections over them, where one shared
                # socket lets whichever process wakes first take every connection waiting
                listeners = [
                    listen(config.bind, config.port, LISTEN_BACKLOG, reuse_port=True) for _ in range(processes)
                ]
            except OSError as e:
                raise CliError(
                    f"cannot listen on {config.bind}:{config.port}: {e.strerror}; is another server there? "
                    "choose another --port"
                ) from None
            say(_serving_banner(config, processes))

            def serve_one(index: int) -> int:
                from ..server import Server

                def work() -> None:
                    with Server(config) as server:
                        server.run(listener_fd=listeners[index].fileno())
                        _report_stop(server)

                return _reported(work)

            with contextlib.ExitStack() as sockets:
                for listener in listeners:
                    sockets.enter_context(listener)
                # the slowest stop: Hypercorn's graceful timeout, then the triggers', then the Host's
                stop_timeout_s = 2 * config.graceful_timeout_s + 15
                code = supervisor.serve(processes, serve_one, stop_timeout_s=stop_timeout_s, on_exit=_metrics_gone)
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


def deploy_at_start(
    server: Server,
    sources: list[tuple[str, Callable[[], bytes]]],
    *,
    created_by: str,
) -> None:
    """Deploy bundles before serving, through the server's one deploy pipeline (verified when it
    trusts signing keys, audited). `sources` are (label, a function returning the bundle zip). A bad
    bundle stops the start, naming it."""
    for label, load in sources:
        try:
            with progress(f"deploying {label}"):
                deployed = server.deploy_bundle(load(), created_by=created_by, detail={"source": label})
        except (FnhostError, CliError) as e:
            raise CliError(f"{label}: {e}") from None
        signed = f" (signed by {deployed.signed_by})" if deployed.signed_by else ""
        say(f"  {deployed.version.name} version {deployed.version.version}{signed}")


def _bundle_files(bundles: Path) -> list[tuple[str, Callable[[], bytes]]]:
    paths = sorted(bundles.glob("*.zip"))
    if not paths:
        raise CliError(f"--bundles {bundles}: no *.zip files there; build some with `fnhost build DIR -o`")
    return [(str(p), p.read_bytes) for p in paths]


def _guest_dirs(given: list[str]) -> list[Path]:
    """`fnhost dev`'s guests: the ones given, else the repository's Rust examples (fast to build)."""
    if given:
        return [Path(g) for g in given]
    from ..build import sdk_root

    return sorted(d for d in (sdk_root().parent / "guests" / "rust").iterdir() if (d / "fnhost.toml").is_file())


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
