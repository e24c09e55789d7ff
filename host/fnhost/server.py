"""`Server`: a Host, its triggers, API keys, audit log and HTTP API, assembled from one `ServerConfig`.

    from fnhost import Server, ServerConfig

    with Server(ServerConfig(data_dir=".fnhost", port=8080)) as server:
        server.ensure_bootstrap_admin()          # .fnhost/admin.key, on the first start
        server.deploy_bundle(open("hello.zip", "rb").read())
        server.run()                             # Hypercorn until SIGINT/SIGTERM

`server.app` is a plain ASGI app: mount it in another ASGI server and its lifespan still starts
the background work. The lifespan (Starlette's) owns that work: at startup it starts the triggers
(async invokes, queue triggers, schedules) and the audit flusher; at shutdown it stops them within
`graceful_timeout_s` and writes what must not be lost (the pending summaries of failed
authentications, the buffered invocation records). `fnhost serve` is a few lines over this.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .chains import DEFAULT_MAX_CHAIN_DEPTH
from .control.audit import AuditLog, FailedAuthentications
from .control.auth import ApiKeys, Principal
from .control.bundles import BundleLimits
from .control.deploys import Deployer, Deployment
from .egress import EgressConfig
from .host import Host
from .stores.blobs import DEFAULT_MAX_OBJECT_BYTES
from .stores.usage import UsageRetention
from .triggers import Triggers
from .triggers._common import Worker

if TYPE_CHECKING:
    from starlette.applications import Starlette

LISTEN_BACKLOG = 2048
"""The listen backlog of a `--processes N` server's socket (Hypercorn listens on it again)."""
STOP_MARGIN_S = 1.0
"""A stop ends within `graceful_timeout_s` plus this."""
AUDIT_FLUSH_INTERVAL_S = 5.0
"""How often the pending failed-authentication summaries are looked at (each is written once its
interval has passed, so a burst of 401s is in the audit log within about a minute, not at the next 401)."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server is made of; the fields of `fnhost serve`'s options (`--data-dir`, ...)."""

    data_dir: str | Path = ".fnhost"
    cache_dir: str | Path | None = None
    database: str | None = None
    """postgresql://... for a node of a cluster; None: SQLite in `data_dir`."""
    bind: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    global_concurrency: int = 64
    function_share: float = 0.5
    namespace_share: float = 1.0
    max_pinned: int = 16
    max_pinned_per_function: int = 2
    max_warm_mb: int = 1024
    isolate: bool = True
    """Demoted functions run in a second process (`fnhost.isolation`)."""
    max_log_memory_mb: int = 256
    """Log lines all running invocations hold together (see docs/security.md)."""
    max_blob_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    """The largest blob object, from the API or a guest (default 1 GiB)."""
    max_body_bytes: int | None = None
    """None: the API's default (6 MiB)."""
    max_body_bytes_in_flight: int | None = None
    """None: the API's default (twice the largest bundle)."""
    max_bundle_bytes: int = BundleLimits().max_upload_bytes
    body_timeout_s: float = 30.0
    read_timeout_s: float | None = None
    """None (the default): no Hypercorn read timeout. Heads are bounded by the keep-alive timeout and
    bodies by `body_timeout_s`; a read timeout would also cut off every request whose response takes
    longer than it (a 60 s invocation, a slow deploy's compile), since Hypercorn applies it while the
    response is pending."""
    graceful_timeout_s: float = 10.0
    read_only: bool = False
    trusted_keys: tuple[str, ...] = ()
    """`ed25519:...` public keys; when given, every deployed bundle must be signed by one."""
    run_triggers: bool = True
    access_log: bool = False
    max_followers: int = 64
    """Log-follow streams open at once (`logs --follow`); more get 503."""
    usage_hourly_days: int = 14
    """Days hourly usage rollups are kept (`GET /v1/usage`); daily ones `usage_daily_days`."""
    usage_daily_days: int = 400
    egress: EgressConfig = field(default_factory=EgressConfig)
    """Outbound HTTP of functions (`--egress`, `--egress-ca-file`)."""
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH
    """The longest chain of functions triggering each other before it is taken for a loop (`fnhost.chains`)."""


class Server:
    """One server over one data dir (or one node of a cluster): the `Host` (`server.host`), its
    `Triggers`, `ApiKeys`, `AuditLog` and the Starlette app (`server.app`) that serves them.

    Given a `host`, the server uses it and leaves it open at `close`; otherwise it makes one from
    the config and closes it.
    """

    def __init__(self, config: ServerConfig | None = None, *, host: Host | None = None) -> None:
        from .api import create_app  # here, not at import: see fnhost.api

        self.config = config = config or ServerConfig()
        self._owns_host = host is None
        self.host = (
            host
            if host is not None
            else Host(
                Path(config.data_dir),
                cache_dir=config.cache_dir,
                database=config.database,
                max_pinned_per_function=config.max_pinned_per_function,
                max_pinned=config.max_pinned,
                max_warm_mb=config.max_warm_mb,
                isolate=config.isolate,
                max_log_memory_mb=config.max_log_memory_mb,
                usage_retention=UsageRetention(config.usage_hourly_days, config.usage_daily_days),
                max_blob_bytes=config.max_blob_bytes,
                egress=config.egress,
                max_chain_depth=config.max_chain_depth,
            )
        )
        try:
            self._assemble(config, create_app)
        except BaseException:
            if self._owns_host:
                self.host.close()
            raise

    def _assemble(self, config: ServerConfig, create_app: Callable[..., Starlette]) -> None:
        self.keys = self.host.open_store(ApiKeys)
        self.audit_log = self.host.open_store(AuditLog)
        self.failed_auth = FailedAuthentications(self.audit_log)
        self.triggers = Triggers(self.host)
        self.deployer = Deployer(
            self.host,
            self.audit_log,
            trusted_keys=config.trusted_keys,
            limits=BundleLimits(max_upload_bytes=config.max_bundle_bytes),
        )
        self.stopping = threading.Event()
        """Set when the server begins to stop: long requests (`logs --follow`) end at once."""
        self._audit_flusher = Worker("fnhost-audit-flush", self._flush_audit)
        self._stop_work: threading.Thread | None = None
        self._stop_started = 0.0
        self.stopped_clean = True
        """False when the last stop left some trigger worker running past `graceful_timeout_s`."""
        given: dict[str, Any] = {}
        if config.max_body_bytes is not None:
            given["max_body_bytes"] = config.max_body_bytes
        if config.max_body_bytes_in_flight is not None:
            given["max_body_bytes_in_flight"] = config.max_body_bytes_in_flight
        self.app: Starlette = create_app(
            self.host,
            read_only=config.read_only,
            workers=config.workers,
            global_concurrency=config.global_concurrency,
            function_share=config.function_share,
            namespace_share=config.namespace_share,
            max_bundle_bytes=config.max_bundle_bytes,
            body_timeout_s=config.body_timeout_s,
            trusted_keys=config.trusted_keys,
            keys=self.keys,
            audit_log=self.audit_log,
            failed_auth=self.failed_auth,
            triggers=self.triggers,
            deployer=self.deployer,
            stopping=self.stopping,
            lifespan=self.lifespan,
            max_followers=config.max_followers,
            follow_max_s=25.0 if config.read_timeout_s is None else max(1.0, min(25.0, config.read_timeout_s * 0.8)),
            **given,
        )

    # what a server does once -------------------------------------------------------------------
    def ensure_bootstrap_admin(self) -> Path | None:
        """On the first start (no keys yet), an admin key whose token is written to DATA_DIR/admin.key
        (mode 0600); that file's path, or None when keys exist."""
        return self.keys.ensure_bootstrap_admin(Path(self.config.data_dir))

    def deploy_bundle(
        self,
        bundle: bytes,
        actor: Principal | None = None,
        *,
        name: str | None = None,
        created_by: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Deployment:
        """Deploy a bundle zip through the one pipeline the API uses (`fnhost.control.deploys`):
        verified against `trusted_keys`, checked against `actor`'s grant rights (None: the operator),
        audited."""
        return self.deployer.deploy_bundle(bundle, actor, name=name, created_by=created_by, detail=detail)

    # the lifespan ------------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """Starlette's lifespan: `start` at startup, `stop` at shutdown (off the event loop)."""
        await anyio.to_thread.run_sync(self.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self.stop)

    def start(self) -> None:
        """Start the background work: the triggers (unless `run_triggers` is off) and the audit flusher."""
        self.stopping.clear()
        self._stop_work = None
        self._triggers_clean = True
        if self.config.run_triggers:
            self.triggers.start()
        self._audit_flusher = Worker("fnhost-audit-flush", self._flush_audit)
        self._audit_flusher.start()

    def begin_stop(self) -> None:
        """The stop signal: long requests end now, and the triggers begin to stop alongside the
        HTTP server's graceful stop (on their own thread)."""
        self.stopping.set()
        if self._stop_work is None:
            self._stop_work = threading.Thread(target=self._stop_triggers, name="fnhost-stopping", daemon=True)
            self._stop_work.start()
            self._stop_started = time.monotonic()

    def stop(self) -> bool:
        """Stop the background work within `graceful_timeout_s` (+ a moment) and write what must not
        be lost; True if every worker ended in time."""
        self.begin_stop()
        assert self._stop_work is not None
        budget = self.config.graceful_timeout_s + STOP_MARGIN_S / 2
        self._stop_work.join(max(0.0, self._stop_started + budget - time.monotonic()))
        self._audit_flusher.stop()
        self._audit_flusher.join(STOP_MARGIN_S / 2)
        self.failed_auth.flush(end_interval=True)  # the summaries of this interval, not lost at shutdown
        self.host.flush()  # buffered invocation records
        self.stopped_clean = self._triggers_clean and not self._stop_work.is_alive()
        return self.stopped_clean

    def _stop_triggers(self) -> None:
        self._triggers_clean = self.triggers.stop(timeout_s=self.config.graceful_timeout_s)

    def _flush_audit(self) -> float:
        self.failed_auth.flush()
        return AUDIT_FLUSH_INTERVAL_S

    # serving -----------------------------------------------------------------------------------
    def run(self, *, listener_fd: int | None = None) -> None:
        """Serve with Hypercorn until SIGINT or SIGTERM (in the main thread), then stop gracefully."""
        asyncio.run(self.serve(listener_fd=listener_fd))

    async def serve(
        self, *, shutdown_trigger: Callable[[], Awaitable[Any]] | None = None, listener_fd: int | None = None
    ) -> None:
        """Serve with Hypercorn on `bind:port` (or the inherited socket `listener_fd`) until
        `shutdown_trigger` returns (default: SIGINT or SIGTERM), letting requests finish within
        `graceful_timeout_s`."""
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"{self.config.bind}:{self.config.port}" if listener_fd is None else f"fd://{listener_fd}"]
        config.accesslog = "-" if self.config.access_log else None
        config.graceful_timeout = self.config.graceful_timeout_s
        # a connection that sends nothing this long is closed, even while its response is pending
        # (Hypercorn takes seconds as a number; it annotates them int)
        config.read_timeout = self.config.read_timeout_s  # type: ignore[assignment]
        app: Any = self.app
        if listener_fd is not None:  # one of `--processes N`: name the process on every response
            from .api.middleware import ProcessIdMiddleware

            app = ProcessIdMiddleware(app)
            config.backlog = LISTEN_BACKLOG  # Hypercorn listens again, with this
        stop = asyncio.Event()
        if shutdown_trigger is None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            # a server process of `--processes N` starts with them blocked, so that none is lost meanwhile
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
            shutdown_trigger = stop.wait

        async def stop_when_asked() -> None:
            await shutdown_trigger()
            self.begin_stop()

        await serve(app, config, shutdown_trigger=stop_when_asked)

    def close(self) -> None:
        """Stop what still runs and close the host (when this server made it)."""
        if self.triggers.started:
            self.stop()
        self.app.state.fnhost.pool.close()
        if self._owns_host:
            self.host.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Server", "ServerConfig"]
