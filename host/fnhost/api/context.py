"""What every handler shares: the host, keys, audit log, metrics and the invocation pool.

Handlers stay thin: parse the request, `authorize`, call one Host/control method (through
`blocking`, so SQLite and compiles never run on the event loop), `audit`, answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from ..control.audit import AuditLog, FailedAuthentications
from ..control.auth import DEPLOY, INVOKE, ApiKeys, Principal
from ..control.deploys import Deployer
from ..errors import FnhostError, Forbidden, NotFound, ReadOnly, Unauthorized
from ..host import Host
from ..namespaces import DEFAULT, check_namespace, qualify
from ..namespaces import namespace_of as namespace_of_stored
from ..runtime.outcomes import InvocationResult
from ..stores.registry import no_such_function
from ..triggers import Triggers
from .errors import Throttled, request_id_of
from .metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("fnhost.api")
R = TypeVar("R", InvocationResult, InvocationResult | None)

READ = "read"
"""Not a stored scope: reading a function's metadata and invocation records is allowed to any key
that may deploy or invoke that function (admin keys included)."""


def require_read(principal: Principal, function: str | None) -> None:
    if principal.allows(DEPLOY, function) or principal.allows(INVOKE, function):
        return
    if function is not None and not principal.sees(function):
        raise NotFound(no_such_function(function))
    raise Forbidden(
        f"API key {principal.key_id} ({principal.name}) may not read function '{function}': reading "
        "needs the 'deploy' or 'invoke' scope for it"
    )


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking control-plane call (SQLite, compile) on anyio's default thread pool."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


class InvocationPool:
    """Bounded, shared-out execution of invocations: `workers` threads, at most `max_in_flight` admitted.

    Admission is checked on the event loop (single-threaded, so plain counters are exact). An
    invocation over `max_in_flight` is refused at once with 429 rather than queued without bound;
    admitted ones wait for one of the `workers` threads.

    Bulkheads, two levels: one namespace holds at most `namespace_share` of the workers and of the
    admissions, and one function at most `function_share` of them (each at least one), so a
    function that is slow or misbehaving queues behind its own share, and a team's functions
    together behind their namespace's, while the others keep theirs.

    It is on every function URL's path, so it is plain asyncio: semaphores that do not yield to the
    loop when a share is free (anyio's capacity limiters checkpoint on every acquire) and a thread
    pool of `workers` threads, whose queue is the wait for a worker. A call whose caller goes away
    keeps its shares until its thread returns.
    """

    def __init__(
        self,
        workers: int,
        max_in_flight: int,
        metrics: Metrics,
        function_share: float = 0.5,
        namespace_share: float = 1.0,
    ) -> None:
        if workers < 1 or max_in_flight < 1:
            raise ValueError("workers and global concurrency must be at least 1")
        for what, share in (("function", function_share), ("namespace", namespace_share)):
            if not 0 < share <= 1:
                raise ValueError(f"{what} share must be in (0, 1], got {share}")
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="fnhost-invoke")
        self.max_in_flight = max_in_flight
        self.function_workers = max(1, int(workers * function_share))
        self.function_in_flight = max(1, int(max_in_flight * function_share))
        self.namespace_workers = max(1, int(workers * namespace_share))
        self.namespace_in_flight = max(1, int(max_in_flight * namespace_share))
        self.in_flight = 0
        self.metrics = metrics
        self._functions: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        self._namespaces: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    async def run(self, function: str, call: Callable[[], R]) -> R:
        if self.in_flight >= self.max_in_flight:
            self.metrics.throttles.labels(function, "global").inc()
            raise Throttled(
                f"{self.in_flight} invocations are in flight, this server's limit "
                f"(--global-concurrency {self.max_in_flight}); retry after a moment"
            )
        namespace = namespace_of_stored(function)
        space_limiter, space_admitted = self._share(self._namespaces, namespace, self.namespace_workers)
        self._admit(function, f"namespace '{namespace}'", space_admitted[0], self.namespace_in_flight, "namespace")
        limiter, admitted = self._share(self._functions, function, self.function_workers)
        self._admit(function, f"function '{function}'", admitted[0], self.function_in_flight, "function")
        self.in_flight += 1
        admitted[0] += 1
        space_admitted[0] += 1
        self.metrics.in_flight.inc()
        held: list[asyncio.Semaphore] = []

        def release() -> None:  # on the event loop
            for semaphore in held:
                semaphore.release()
            self.in_flight -= 1
            admitted[0] -= 1
            space_admitted[0] -= 1
            self.metrics.in_flight.dec()
            if not admitted[0]:
                del self._functions[function]
            if not space_admitted[0]:
                del self._namespaces[namespace]

        try:
            # the function's share of the workers, then its namespace's (a call waiting for its own
            # function's share holds none of the namespace's), then a worker
            for semaphore in (limiter, space_limiter):
                await semaphore.acquire()
                held.append(semaphore)
            work = self._workers.submit(call)
        except BaseException:
            release()
            raise
        try:
            result = await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            if work.cancel():  # still waiting for a worker: it never runs
                release()
            else:  # running: its shares stay taken until its thread returns
                loop = asyncio.get_running_loop()
                work.add_done_callback(lambda _: loop.call_soon_threadsafe(release))
            raise
        except BaseException:
            release()
            raise
        release()
        if isinstance(result, InvocationResult):
            self.metrics.observe(result)
        return result

    def close(self) -> None:
        """No more calls start; running ones finish on their threads."""
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _admit(self, function: str, who: str, admitted: int, limit: int, level: str) -> None:
        if admitted >= limit:
            self.metrics.throttles.labels(function, f"{level}_share").inc()
            raise Throttled(
                f"{who} has {admitted} invocations in flight, its share of this server "
                f"(--{level}-share of --global-concurrency {self.max_in_flight}); retry after a moment"
            )

    @staticmethod
    def _share(
        shares: dict[str, tuple[asyncio.Semaphore, list[int]]], key: str, workers: int
    ) -> tuple[asyncio.Semaphore, list[int]]:
        share = shares.get(key)
        if share is None:
            share = shares[key] = (asyncio.Semaphore(workers), [0])
        return share


class Followers:
    """How many log-follow streams are open (api/follow.py), the most there may be, and how long each lasts."""

    def __init__(self, max_followers: int, max_s: float) -> None:
        self.max_followers = max_followers
        self.max_s = max_s
        self.open = 0


@dataclass
class AuditNote:
    target: str
    detail: dict[str, Any]


@dataclass
class ApiContext:
    host: Host
    keys: ApiKeys
    audit_log: AuditLog
    metrics: Metrics
    pool: InvocationPool
    triggers: Triggers
    deployer: Deployer
    read_only: bool = False
    failed_auth: FailedAuthentications | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    followers: Followers = field(default_factory=lambda: Followers(max_followers=64, max_s=25.0))

    async def authorize(
        self, request: Request, scope: str, function: str | None = None, *, namespace: str | None = None
    ) -> Principal:
        """The caller's key, checked for `scope` (on `function` or in `namespace`); a refusal is
        audited, then raised."""
        principal = await self.authenticate(request)
        await self.check(request, principal, scope, function, namespace=namespace)
        return principal

    async def authenticate(self, request: Request) -> Principal:
        """The caller's key (`Unauthorized` if missing, unknown or revoked: audited, aggregated per
        source by `FailedAuthentications`)."""
        return await self.authenticate_header(request, request.headers.get("authorization"))

    async def authenticate_header(self, request: Request, authorization: str | None) -> Principal:
        """`authenticate` for an `Authorization` value that came another way (the console's sign-in form)."""
        try:
            return await blocking(self.keys.authenticate, authorization)
        except Unauthorized as e:
            if self.failed_auth is None:
                await self.audit_denied(request, None, e, {})
            else:
                source = FailedAuthentications.source_of(request.client.host if request.client else "unknown")
                target = f"{request.method} {request.url.path}"
                detail = {"message": str(e)}
                await blocking(self.failed_auth.failed, source, target, e.code, request_id_of(request), detail)
            raise

    async def check(
        self, request: Request, principal: Principal, scope: str, function: str | None, *, namespace: str | None = None
    ) -> None:
        """`Forbidden` (or `NotFound` for a function the key may not see), audited, unless
        `principal` has `scope` (on `function` or in `namespace`, when named)."""
        try:
            if scope == READ:
                require_read(principal, function)
            else:
                principal.require(scope, function, namespace=namespace)
        except FnhostError as e:
            detail = {"scope": scope, "function": function, "namespace": namespace}
            await self.audit_denied(request, principal, e, detail)
            raise

    async def audit_denied(
        self, request: Request, principal: Principal | None, error: FnhostError, detail: dict[str, Any]
    ) -> None:
        target = f"{request.method} {request.url.path}"
        await self._audit_failure(
            request, "auth.denied", target, error.code, principal, {**detail, "message": str(error)}
        )

    async def _audit_failure(
        self,
        request: Request,
        action: str,
        target: str,
        outcome: str,
        principal: Principal | None,
        detail: dict[str, Any],
    ) -> None:
        """Audit a failure; if the audit itself fails (a full disk...), log it and let the caller
        raise the original error, which says what really went wrong."""
        try:
            await self.audit(request, action, target=target, outcome=outcome, principal=principal, detail=detail)
        except Exception:
            log.exception(
                "fnhost: could not audit %s %s (%s); answering with the original error", action, target, outcome
            )

    async def audit(
        self,
        request: Request,
        action: str,
        *,
        target: str,
        outcome: str = "ok",
        principal: Principal | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await blocking(
            self.audit_log.record,
            action,
            target,
            outcome,
            principal.key_id if principal is not None else None,
            request_id_of(request),
            detail or {},
        )

    @asynccontextmanager
    async def audited(
        self,
        request: Request,
        action: str,
        target: str,
        principal: Principal,
        detail: dict[str, Any] | None = None,
    ) -> AsyncIterator[AuditNote]:
        """Records `action` when the block ends: outcome `ok`, or the `FnhostError`'s code (re-raised).

        The block may change `note.target` and add to `note.detail` as it learns more.
        """
        note = AuditNote(target, dict(detail or {}))
        try:
            yield note
        except FnhostError as e:
            await self._audit_failure(
                request, action, note.target, e.code, principal, {**note.detail, "message": str(e)}
            )
            raise
        await self.audit(request, action, target=note.target, principal=principal, detail=note.detail)

    def writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnly(
                f"{what} is disabled: this server runs read-only (--read-only), serving the bundles "
                "it was started with; deploy to the control-plane server instead"
            )


def namespace_of(request: Request) -> str:
    """The namespace a request addresses: `/v1/namespaces/{namespace}/...`, else `default`."""
    return check_namespace(request.path_params.get("namespace", DEFAULT))


def function_of(request: Request) -> str:
    """The store name of the function a request addresses (fnhost.namespaces)."""
    return qualify(namespace_of(request), request.path_params["name"])


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.fnhost
    return ctx
