"""`Host`: the embedding API. The HTTP API and the CLI call these same methods."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import wasmtime

from .capabilities import (
    BlobsCapability,
    BodyCapability,
    Capability,
    CoreResults,
    HttpCapability,
    KvCapability,
    LogCapability,
    QueueCapability,
    SecretsCapability,
)
from .chains import DEFAULT_MAX_CHAIN_DEPTH, ChainGuard
from .control.auth import Principal
from .control.grants import authorize_deploy
from .control.shares import Shares
from .egress import Egress, EgressConfig
from .errors import InvalidWasm, ManifestError, NotFound
from .invoker import DEFAULT_MAX_LOG_MEMORY_BYTES, Invoker
from .isolation import Isolation, Ran, isolation_options
from .manifest import Manifest
from .namespaces import resolve_manifest, split
from .recorder import InvocationRecorder
from .runtime import abi
from .runtime.engine import CRANELIFT, WINCH, CompileCache, EngineSettings, EpochTicker, is_component, make_engine
from .runtime.outcomes import InvocationResult
from .runtime.sandbox import Call, Prepared, Sandbox
from .runtime.tiers import TieredCompiler
from .stores import (
    LIVE,
    AliasMove,
    Database,
    FunctionRecord,
    InvocationStore,
    Registry,
    SQLiteKVStore,
    SQLiteQueueStore,
    SQLiteSecretStore,
    VersionRecord,
    load_master_key,
)
from .stores.blobs import BLOB_SPACE, DEFAULT_MAX_OBJECT_BYTES, BlobStore, BlobSubscription
from .stores.concurrency import ConcurrencyStore
from .stores.content import ContentStore, DatabaseContentStore, FileContentStore
from .stores.database import AnyDatabase, PostgresDatabase, open_database
from .stores.registry import no_such_function
from .stores.usage import Rollup, UsageRetention, UsageStore
from .stores.wasm import DatabaseWasmStore, FileWasmStore, WasmStore

WASM_MAGIC = b"\x00asm"
S = TypeVar("S")


@dataclass(frozen=True)
class Version:
    """A deployed, immutable version of a function."""

    name: str
    version: int
    sha256: str
    created_at: float
    created_by: str | None
    manifest: Manifest
    created: bool = False  # from `Host.deploy`: this call made it (False: an identical newest existed)

    @classmethod
    def of(cls, record: VersionRecord, *, created: bool = False) -> Version:
        return cls(
            record.name,
            record.version,
            record.sha256,
            record.created_at,
            record.created_by,
            _manifest_of(record.manifest_json),
            created,
        )


@dataclass(frozen=True)
class RuntimeStats:
    pinned_by_function: dict[str, int]
    """Threads still running a guest past its deadline (blocked where Wasmtime cannot interrupt it)."""
    max_pinned: int
    warm_idle_bytes: int
    """Memory idle warm instances may hold, each counted at its limits.memory_mb."""
    max_warm_idle_bytes: int
    log_bytes: int = 0
    """Log lines running invocations hold in memory, together (each line at its bytes + 57)."""
    max_log_bytes: int = 0
    isolated_invocations: int = 0
    """Invocations of demoted functions run in the isolation process (`fnhost.isolation`) so far."""
    isolation_up: bool = False
    """Is the isolation process running?"""


@functools.lru_cache(maxsize=1024)
def _manifest_of(manifest_json: str) -> Manifest:
    """Parsed once per distinct manifest: versions are immutable, and function URLs read it per request."""
    return Manifest.from_dict(json.loads(manifest_json))


class Host:
    """A function host over one data directory.

    ``data_dir`` holds ``fnhost.db`` (SQLite, WAL), ``wasm/`` (deployed binaries by sha256) and,
    unless ``cache_dir`` is given, ``compiled/`` (serialized native code). Invoking is thread-safe.

    With ``database="postgresql://..."`` every table and every deployed binary live in that shared
    database instead (`fnhost.stores.database`), and ``data_dir`` keeps only what a node may lose:
    the compile cache and, without ``FNHOST_MASTER_KEY``, the master key file.

    A function is named by its store name (`fnhost.namespaces`): `billing` in the `default`
    namespace, `team-a/billing` in namespace `team-a`. Calls that change what a function may reach
    (`deploy`, `set_alias`, `unpin_live`) take the acting key as `principal` and check its grant
    rights (`fnhost.control.grants`); `principal=None` is the operator, who may grant anything.

    Its public surface is these methods and the stores a caller may use directly (`kv`, `queues`,
    `secrets`, `shares`, `invocations`); the database, registry, engines and invoker are its own.
    A server's other parts reach the database through `open_store` (`fnhost.Server` does).

    ``egress`` sets outbound HTTP (`fnhost.egress.EgressConfig`: the mode — ``allowlist`` by
    default, ``public`` or ``off`` — body caps, the per-invocation request cap, extra CAs).

    ``max_chain_depth`` bounds chains of functions that trigger each other (`fnhost.chains`): what an
    invocation at that depth publishes or writes that would trigger another is refused, and a request
    deeper than it is `LoopDetected` (508). ``chains`` counts the chains stopped.

    ``isolate=True`` runs demoted functions (those that recently hit a limit or run long) in a child
    process of their own, so that their memory traffic and CPU cannot slow the others
    (`fnhost.isolation`; `fnhost serve` turns it on). The child starts at the first demotion.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        cache_dir: str | Path | None = None,
        master_key: bytes | None = None,
        engine_settings: EngineSettings | None = None,
        max_kv_value_bytes: int = 1 << 20,
        max_queue_message_bytes: int = 256 * 1024,
        database: str | None = None,
        max_pinned_per_function: int = 2,
        max_pinned: int = 16,
        max_warm_mb: int = 1024,
        max_log_memory_mb: int = DEFAULT_MAX_LOG_MEMORY_BYTES >> 20,
        usage_retention: UsageRetention | None = None,
        resolve_ttl_s: float | None = None,
        max_blob_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
        egress: EgressConfig | None = None,
        max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
        isolate: bool = False,
    ) -> None:
        # isolate: demoted functions run in a child process made from these same arguments (fnhost.isolation)
        self._isolation = (
            Isolation(
                isolation_options(
                    data_dir=data_dir,
                    cache_dir=cache_dir,
                    master_key=master_key,
                    engine_settings=engine_settings,
                    max_kv_value_bytes=max_kv_value_bytes,
                    max_queue_message_bytes=max_queue_message_bytes,
                    database=database,
                    max_log_memory_mb=max_log_memory_mb,
                    max_blob_bytes=max_blob_bytes,
                    egress=egress,
                    max_chain_depth=max_chain_depth,
                )
            )
            if isolate
            else None
        )
        self.chains = ChainGuard(max_chain_depth)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._db = open_database(database) if database else Database(self.data_dir / "fnhost.db")
        self._wasm: WasmStore
        if isinstance(self._db, PostgresDatabase):
            self._wasm = DatabaseWasmStore(self._db)
        else:
            self._wasm = FileWasmStore(self.data_dir / "wasm")
        self._registry = Registry(self._db)
        self.kv = SQLiteKVStore(self._db, max_value_bytes=max_kv_value_bytes)
        self.queues = SQLiteQueueStore(
            self._db, max_message_bytes=max_queue_message_bytes, max_chain_depth=self.chains.max_depth
        )
        blob_content: ContentStore
        if isinstance(self._db, PostgresDatabase):
            blob_content = DatabaseContentStore(self._db, BLOB_SPACE)
        else:
            blob_content = FileContentStore(self.data_dir / "blobs")
        self.blobs = BlobStore(self._db, blob_content, self.queues, max_object_bytes=max_blob_bytes)
        self.secrets = SQLiteSecretStore(self._db, master_key or load_master_key(self.data_dir))
        self.shares = Shares(self._db)
        self._usage = UsageStore(self._db)
        self.invocations = InvocationRecorder(InvocationStore(self._db), self._usage, retention=usage_retention)
        self._settings = engine_settings or EngineSettings()
        self._engine = make_engine(self._settings)  # Cranelift: what every version runs in the end
        engines = {CRANELIFT: self._engine}
        if self._settings.baseline_min_bytes is not None:
            engines[WINCH] = make_engine(self._settings, WINCH)
        self._ticker = EpochTicker(list(engines.values()), self._settings.epoch_tick_ms)
        cache_root = Path(cache_dir) if cache_dir else self.data_dir / "compiled"
        caches = {c: CompileCache(cache_root, e, self._settings, c) for c, e in engines.items()}
        self._compiler = TieredCompiler(caches, self._settings.baseline_min_bytes)
        self._capabilities: list[Capability] = [
            KvCapability(self.kv),
            QueueCapability(self.queues),
            SecretsCapability(self.secrets),
            LogCapability(),
            BlobsCapability(self.blobs),
            HttpCapability(Egress(egress)),
            BodyCapability(),
            CoreResults(),
        ]
        self._sandbox = Sandbox(engines, self._ticker, self._capabilities)
        self._invoker = Invoker(
            self._registry,
            self._sandbox,
            self.invocations,
            self._load,
            shared=self.shares.active,
            max_pinned_per_function=max_pinned_per_function,
            max_pinned=max_pinned,
            max_warm_bytes=max_warm_mb << 20,
            cluster_slots=ConcurrencyStore(self._db),
            max_log_memory_bytes=max_log_memory_mb << 20,
            chains=self.chains,
            isolation=self._isolation,
        )
        if resolve_ttl_s is not None:
            self.resolve_ttl_s = resolve_ttl_s
        # Deploys, alias changes and deletes through other hosts of a shared database reach this one at
        # once (PostgreSQL LISTEN/NOTIFY); the resolve TTL stays the fallback.
        self._stop_listening = self._db.listen(self._changed_elsewhere)

    # deploying -----------------------------------------------------------------------------------
    def deploy(
        self,
        name: str,
        wasm: bytes,
        manifest: Manifest | dict[str, Any] | str,
        *,
        principal: Principal | None = None,
        created_by: str | None = None,
        go_live: bool = True,
    ) -> Version:
        """Validate, compile and record a new version (or return the newest one if identical).

        `live` follows it unless pinned; with `go_live=False` no alias moves (`release` does that
        later: the first phase of `fnhost up`, so a failure midway leaves traffic where it was).

        `name` is the store name (`team-a/billing` deploys `billing` into namespace `team-a`).
        Nothing is stored unless every check passes: the manifest, the grants — each within what
        `principal` may grant, and inside the function's namespace or shared with it — the wasm
        (compiled now, so the first invoke never compiles), its exports and its imports. The
        version records who authorized its grants: `principal`'s key id, else `created_by`.
        """
        manifest = _manifest(manifest)
        if manifest.name != split(name)[1]:
            raise ManifestError(f"name: the manifest names '{manifest.name}' but the deploy is for '{name}'")
        authorize_deploy(principal, name, manifest, self.shares)
        if principal is not None:
            created_by = principal.key_id
        if wasm[:4] != WASM_MAGIC:
            raise InvalidWasm("module is not WebAssembly (no \\0asm header); build it with `fnhost build`")
        sha256 = hashlib.sha256(wasm).hexdigest()
        try:
            compiled, compiler = self._compiler.compile(sha256, len(wasm), is_component(wasm), lambda: wasm)
        except wasmtime.WasmtimeError as e:
            raise InvalidWasm(f"Wasmtime rejects the module: {str(e).strip().splitlines()[0]}") from None
        prepared = self._sandbox.prepare(name, 0, manifest, compiled, compiler)  # checks exports and imports
        self._wasm.put(sha256, wasm)
        record, created = self._registry.record_deploy(
            name, sha256, json.dumps(manifest.to_dict(), sort_keys=True), created_by, go_live=go_live
        )
        prepared.version = record.version
        self._invoker.add_prepared(prepared, sha256)
        self._aliases_changed(name)
        self._tier_up(prepared, sha256)
        return Version.of(record, created=created)

    def _aliases_changed(self, name: str) -> None:
        """After a deploy or an alias change: forget resolved aliases, drop superseded warm instances,
        and point the blob triggers at what the live version's manifest declares (none while no
        version is live)."""
        self._invoker.invalidate(name)
        aliases = self._registry.aliases(name)
        self._invoker.drop_warm_except(name, {a.version for a in aliases})
        if not any(a.alias == LIVE for a in aliases):
            self.blobs.set_subscriptions(name, [])  # deployed with go_live=False: nothing live subscribes yet
            return
        live = resolve_manifest(name, _manifest_of(self._registry.resolve(name, LIVE).manifest_json))
        self.blobs.set_subscriptions(
            name, [BlobSubscription(name, b.queue, b.bucket, b.prefix, b.events) for b in live.blob_triggers]
        )

    def _tier_up(self, prepared: Prepared, sha256: str) -> None:
        """Winch code serves now; Cranelift code replaces it when the background compile is done."""
        if prepared.compiler == CRANELIFT:
            return

        def swap(compiled: Any) -> None:
            optimized = self._sandbox.prepare(prepared.name, prepared.version, prepared.manifest, compiled, CRANELIFT)
            self._invoker.replace_prepared(prepared, optimized, sha256)

        self._compiler.tier_up(sha256, prepared.component, lambda: self._binary(sha256), swap)

    def wait_for_tier_up(self, timeout: float | None = None) -> bool:
        """Wait until every background Cranelift compile is done (False on timeout)."""
        return self._compiler.wait_idle(timeout)

    def compiler_of(self, name: str, qualifier: str | int | None = None) -> str:
        """The compiler of the code a qualifier's version runs now: "winch" (tiering up) or "cranelift"."""
        return self._invoker.prepared_for(self._invoker.resolve(name, qualifier)).compiler

    def _binary(self, sha256: str) -> bytes:
        data = self._wasm.get(sha256)
        if data is None:
            raise NotFound(f"the deployed binary {sha256} is missing from the wasm store; deploy the function again")
        return data

    def _load(self, record: VersionRecord) -> Prepared:
        """A version not prepared in this process (after a restart, or deployed through another node):
        its compiled artifact from the cache, else its binary from the wasm store, compiled once."""
        header, size = self._wasm.header(record.sha256), self._wasm.size(record.sha256)
        if header is None or size is None:
            raise NotFound(f"the binary of {record.name} version {record.version} is missing; deploy it again")
        compiled, compiler = self._compiler.compile(
            record.sha256, size, is_component(header), lambda: self._binary(record.sha256)
        )
        manifest = _manifest_of(record.manifest_json)
        prepared = self._sandbox.prepare(record.name, record.version, manifest, compiled, compiler)
        self._tier_up(prepared, record.sha256)
        return prepared

    # invoking ------------------------------------------------------------------------------------
    def invoke(
        self, name: str, payload: bytes = b"", *, qualifier: str | int | None = None, chain_depth: int = 0
    ) -> InvocationResult:
        """Run the function's event handler with a direct-invoke payload. `chain_depth`: invocations that
        led to this one (`fnhost.chains`; over `max_chain_depth` is `LoopDetected`)."""
        return self._invoker.invoke(
            name, qualifier, lambda ctx: Call("event", ctx, payload=bytes(payload)), "invoke", chain_depth
        )

    def invoke_event(
        self,
        name: str,
        event: abi.Event,
        *,
        qualifier: str | int | None = None,
        trigger: str = "invoke",
        chain_depth: int = 0,
    ) -> InvocationResult:
        """Run the event handler with any event: an invoke payload (bytes), an `abi.QueueBatch`, an
        `abi.ScheduleTick` or an `abi.BlobEvent`. `trigger` ("async", "queue", "schedule"...) is kept
        in the invocation record; `chain_depth` as for `invoke`."""
        payload = b"" if isinstance(event, abi.QueueBatch | abi.ScheduleTick | abi.BlobEvent) else bytes(event)
        other = None if isinstance(event, bytes | bytearray | memoryview) else event
        return self._invoker.invoke(
            name, qualifier, lambda ctx: Call("event", ctx, payload=payload, event=other), trigger, chain_depth
        )

    def invoke_http(
        self,
        name: str,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        qualifier: str | int | None = None,
        chain_depth: int = 0,
    ) -> InvocationResult:
        """Run the function's HTTP handler. `path` includes the query (`/items?id=3`); `chain_depth` as
        for `invoke`."""
        hdrs = [(k.lower(), v) for k, v in (headers or [])]

        def build(ctx: abi.Context) -> Call:
            return Call("http", ctx, payload=bytes(body), method=method.upper(), path=path or "/", headers=hdrs)

        return self._invoker.invoke(name, qualifier, build, "http", chain_depth)

    # registry ------------------------------------------------------------------------------------
    def list_functions(self) -> list[FunctionRecord]:
        return self._registry.functions()

    def get_function(self, name: str) -> FunctionRecord:
        record = self._registry.get_function(name)
        if record is None:
            raise NotFound(no_such_function(name))
        return record

    def get_version(self, name: str, qualifier: str | int | None = None) -> Version:
        """The version a qualifier names now (an alias resolved within `Invoker.RESOLVE_TTL_S`)."""
        return Version.of(self._invoker.resolve(name, qualifier))

    def cached_version(self, name: str, qualifier: str | int | None = None) -> Version | None:
        """`get_version` when its answer is at hand without I/O (recently resolved), else None."""
        record = self._invoker.resolve_cached(name, qualifier)
        return Version.of(record) if record is not None else None

    def list_versions(self, name: str) -> list[Version]:
        self.get_function(name)
        return [Version.of(r) for r in self._registry.versions(name)]

    def set_alias(self, name: str, alias: str, version: int, *, principal: Principal | None = None) -> None:
        """Point `alias` at `version`. The version's grants must be within what `principal` may
        grant, as for a deploy: moving an alias to a version someone else authorized (a rollback)
        never gives the function more than the mover could give it."""
        self._authorize_version(principal, self._registry.resolve(name, version))
        self._registry.set_alias(name, alias, version)
        self._aliases_changed(name)

    def release(self, moves: Sequence[tuple[str, str, int]], *, principal: Principal | None = None) -> list[AliasMove]:
        """Point several (function, alias, version) at once, all or none (`Registry.release`): the second
        phase of `fnhost up`. Each version's grants are checked against `principal` first, as for
        `set_alias`; `live` keeps following later deploys, and a pinned `live` refuses the release."""
        if not moves:
            return []
        for name, _, version in moves:
            self._authorize_version(principal, self._registry.resolve(name, version))
        released = self._registry.release(moves)
        for name in sorted({m.function for m in released}):
            self._aliases_changed(name)
        return released

    def unpin_live(self, name: str, *, principal: Principal | None = None) -> None:
        """Make `live` follow the newest version again (checked like `set_alias` for that version)."""
        self._authorize_version(principal, self._registry.resolve(name, self.get_function(name).latest_version))
        self._registry.unpin_live(name)
        self._aliases_changed(name)

    def delete_alias(self, name: str, alias: str, *, principal: Principal | None = None) -> None:
        """Remove `alias`; for `live`, which always exists, unpin it (it follows the newest version again)."""
        if alias == LIVE:
            self.unpin_live(name, principal=principal)
            return
        self.get_function(name)
        if not self._registry.delete_alias(name, alias):
            raise NotFound(f"function {name!r} has no alias {alias!r}; `fnhost alias list {name}` shows its aliases")
        self._aliases_changed(name)

    def _authorize_version(self, principal: Principal | None, record: VersionRecord) -> None:
        authorize_deploy(principal, record.name, _manifest_of(record.manifest_json), self.shares)

    def delete_function(self, name: str) -> None:
        """Delete a function, its versions and aliases; garbage-collect unreferenced code."""
        unreferenced = self._registry.delete_function(name)
        self._invoker.forget(name)
        self.blobs.set_subscriptions(name, [])
        for sha256 in unreferenced:
            self._wasm.delete(sha256)
            self._compiler.remove(sha256)

    @property
    def resolve_ttl_s(self) -> float:
        """How long a resolved alias is served without asking the database (default 1 s). Changes made
        through another host reach this one at once on PostgreSQL (its change feed), else within this."""
        return self._invoker.RESOLVE_TTL_S

    @resolve_ttl_s.setter
    def resolve_ttl_s(self, seconds: float) -> None:
        self._invoker.RESOLVE_TTL_S = seconds

    def open_store(self, make: Callable[[AnyDatabase], S]) -> S:
        """A store over this host's database (its SQLite file or the shared PostgreSQL), for the
        parts of a server that keep their own tables: `host.open_store(ApiKeys)`, `AuditLog`,
        the triggers' stores. Closed with the host."""
        return make(self._db)

    def flush(self) -> None:
        """Write what is buffered (invocation records) now, e.g. before a process exits."""
        self.invocations.flush()

    def runtime_stats(self) -> RuntimeStats:
        """Threads guests pin past their deadline, memory idle warm instances and running invocations' logs
        hold (`/metrics`)."""
        warm, logs = self._invoker.warm, self._invoker.log_memory
        return RuntimeStats(
            self._invoker.pinned(),
            self._invoker.max_pinned,
            warm.used,
            warm.max_bytes,
            logs.used,
            logs.max_bytes,
            self._invoker.isolated_calls,
            self._isolation is not None and self._isolation.pid is not None,
        )

    def cluster_slots_in_use(self, name: str) -> int | None:
        """Invocations of `name` running across the cluster (`limits.cluster_max_concurrency`), or
        None on a host of its own (SQLite: no cluster)."""
        slots = self._invoker.cluster_slots
        return slots.in_use(name) if slots is not None else None

    # usage ---------------------------------------------------------------------------------------
    def usage(
        self,
        *,
        period: str = "hour",
        since: float | None = None,
        until: float | None = None,
        namespace: str | None = None,
        function: str | None = None,
    ) -> list[Rollup]:
        """Usage rollups (`fnhost.stores.usage`) per function and `period` ("hour" or "day") whose
        bucket starts in [since, until) (default: the last 24 hours, or 30 days for "day"), of one
        `namespace` or `function` (a store name) or of all; every invocation returned so far counts."""
        until = time.time() if until is None else until
        if since is None:
            since = until - (86400 if period == "hour" else 30 * 86400)
        self.invocations.flush()
        return self._usage.query(period=period, since=since, until=until, namespace=namespace, function=function)

    def not_ready(self) -> str | None:
        """Why this host cannot serve requests that need the database now, or None (`/readyz`)."""
        return self._db.not_ready()

    def _changed_elsewhere(self, change: str | None) -> None:
        kind, _, name = (change or "").partition(":")
        if kind == "deleted":
            self._invoker.forget(name)
        elif kind == "function":
            self._aliases_changed(name)
        else:
            self._invoker.invalidate_all()

    def run_here(
        self, name: str, version: int, sha256: str, call: Call, invocation_id: str, chain_depth: int
    ) -> Ran:
        """One call for the host this one is the isolation process of (`fnhost.isolation`)."""
        return self._invoker.run_here(name, version, sha256, call, invocation_id, chain_depth)

    @property
    def isolation(self) -> Isolation | None:
        """The isolation process's handle (None: demoted functions run in this process)."""
        return self._isolation

    def close(self) -> None:
        if self._isolation is not None:
            self._isolation.close()
        self._stop_listening()
        self._invoker.close()
        self._compiler.close()
        for cap in self._capabilities:
            cap.close()
        self.invocations.close()
        self._ticker.stop()
        self._db.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _manifest(manifest: Manifest | dict[str, Any] | str) -> Manifest:
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, str):
        return Manifest.from_toml(manifest)
    return Manifest.from_dict(manifest)


__all__ = ["LIVE", "Host", "RuntimeStats", "Version"]
