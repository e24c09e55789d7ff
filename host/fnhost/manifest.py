"""The function manifest (`fnhost.toml`): one definition of every field, its default and its range.

A manifest is parsed from TOML text or a plain dict. Every validation error names the field and the
reason, e.g. ``limits.memory_mb: must be 1..4096, got 0``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ManifestError
from .names import ENV_KEY_RE, RESOURCE_RE
from .names import NAME_RE as NAME_RE  # re-exported: the one definition of the rule (full match)

REFERENCE_RE = re.compile(r"(?:[a-z][a-z0-9-]{0,62}/)?[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}")
"""A granted or triggering resource (use `fullmatch`): `name` in the function's own namespace, or
`namespace/name`, another namespace's resource, usable only while shared (see fnhost.namespaces)."""


@dataclass(frozen=True)
class Limits:
    """Per-invocation resource limits. Ranges are enforced by `Manifest.from_dict`."""

    memory_mb: int = 128
    timeout_ms: int = 5_000
    fuel: int = 20_000_000_000  # Python-in-wasm burns ~4e9 fuel/s here: ~5 s of CPU.
    max_concurrency: int = 8
    cluster_max_concurrency: int = 0  # 0: none; N: at most N at once across every node (two database round trips)
    instance_reuse: int = 0  # 0: a fresh instance per invocation; N: an instance serves up to N.
    max_host_calls: int = 10_000
    max_host_bytes: int = 64 * 1024 * 1024
    max_log_bytes: int = 1024 * 1024
    max_response_bytes: int = 16 * 1024 * 1024


LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "memory_mb": (1, 4096),
    "timeout_ms": (1, 900_000),
    "fuel": (1_000, 10**15),
    "max_concurrency": (1, 1000),
    "cluster_max_concurrency": (0, 1000),  # one slot row each, created on first use
    "instance_reuse": (0, 100_000),
    "max_host_calls": (0, 10_000_000),
    "max_host_bytes": (0, 1 << 40),
    "max_log_bytes": (0, 64 * 1024 * 1024),
    "max_response_bytes": (0, 1 << 30),
}


@dataclass(frozen=True)
class Grants:
    """What the function may reach, by `[grants]` key (each capability owns its key and checks its
    value: `fnhost.capabilities`). Anything else is denied at call time."""

    by_key: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[str, ...]:
        """The resources granted under `key` (empty when the manifest names none)."""
        return tuple(self.by_key.get(key, ()))


@dataclass(frozen=True)
class AsyncConfig:
    """`[async]`: asynchronous invokes of this function."""

    retries: int = 2  # attempts after the first one fails
    dead_letter_queue: str | None = None  # where an event goes once its retries are spent


@dataclass(frozen=True)
class QueueTrigger:
    """`[[triggers.queue]]`: an event-source mapping from a queue to the event handler."""

    queue: str
    batch_size: int = 10
    max_batching_window_ms: int = 0  # wait up to this long to fill a batch
    visibility_timeout_s: int = 30  # a delivered batch stays hidden this long unless acked
    max_receive_count: int = 5  # deliveries before a message moves to the dead-letter queue
    dead_letter_queue: str = ""  # default: [async].dead_letter_queue, else "<queue>-dlq"
    pollers: int = 1  # batches in flight at once on each node; at most limits.max_concurrency


@dataclass(frozen=True)
class ScheduleTrigger:
    """`[[triggers.schedule]]`: a cron expression or a fixed rate, in a time zone."""

    name: str
    cron: str | None = None
    rate_s: int | None = None
    timezone: str = "UTC"


ASYNC_RANGES: dict[str, tuple[int, int]] = {"retries": (0, 10)}
QUEUE_TRIGGER_RANGES: dict[str, tuple[int, int]] = {
    "batch_size": (1, 1000),
    "max_batching_window_ms": (0, 300_000),
    "visibility_timeout_s": (1, 43_200),
    "max_receive_count": (1, 1000),
    "pollers": (1, 64),
}
RATE_RANGE = (1, 366 * 86_400)


@dataclass(frozen=True)
class Manifest:
    name: str
    module: str = "function.wasm"
    limits: Limits = field(default_factory=Limits)
    env: dict[str, str] = field(default_factory=dict)
    grants: Grants = field(default_factory=Grants)
    public: bool = False  # function URL reachable without an API key
    forward_credentials: bool = False  # the guest sees callers' Authorization and Cookie headers
    async_config: AsyncConfig = field(default_factory=AsyncConfig)
    queue_triggers: tuple[QueueTrigger, ...] = ()
    schedules: tuple[ScheduleTrigger, ...] = ()

    @classmethod
    def from_toml(cls, text: str | bytes) -> Manifest:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(f"fnhost.toml is not UTF-8 text: {e}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ManifestError(f"fnhost.toml is not valid TOML: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest: must be a table/object")
        known = {"name", "module", "limits", "env", "grants", "http", "build", "async", "triggers"}
        for key in data:
            if key not in known:
                raise ManifestError(f"{key}: unknown field (known: {', '.join(sorted(known))})")
        name = data.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ManifestError(
                f"name: must be 1..63 lower-case letters, digits or '-', starting with a letter, got {name!r}"
            )
        module = data.get("module", "function.wasm")
        if not isinstance(module, str) or not module or module.startswith("/") or ".." in module.split("/"):
            raise ManifestError(f"module: must be a relative path inside the bundle, got {module!r}")
        limits = _limits(data.get("limits", {}))
        async_config = _async(data.get("async", {}))
        queue_triggers, schedules = _triggers(data.get("triggers", {}), limits, async_config)
        return cls(
            name=name,
            module=module,
            limits=limits,
            env=_env(data.get("env", {})),
            grants=_grants(data.get("grants", {})),
            **_http(data.get("http", {})),
            async_config=async_config,
            queue_triggers=queue_triggers,
            schedules=schedules,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        from .capabilities import GRANTED

        d["grants"] = {
            c.grant_key: list(self.grants.get(c.grant_key or ""))
            for c in GRANTED
            if c.written_when_empty or self.grants.get(c.grant_key or "")
        }
        d["http"] = {"public": d.pop("public")}
        if d.pop("forward_credentials"):  # written only when set: older manifests' JSON stays the same
            d["http"]["forward_credentials"] = True
        d["async"] = {k: v for k, v in d.pop("async_config").items() if v is not None}
        d["triggers"] = {
            "queue": list(d.pop("queue_triggers")),
            "schedule": [{k: v for k, v in s.items() if v is not None} for s in d.pop("schedules")],
        }
        return d


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: must be a table, got {type(value).__name__}")
    return value


def _limits(value: Any) -> Limits:
    table = _table(value, "limits")
    out: dict[str, int] = {}
    for key, raw in table.items():
        if key not in LIMIT_RANGES:
            raise ManifestError(f"limits.{key}: unknown limit (known: {', '.join(LIMIT_RANGES)})")
        lo, hi = LIMIT_RANGES[key]
        if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
            raise ManifestError(f"limits.{key}: must be {lo}..{hi}, got {raw!r}")
        out[key] = raw
    return Limits(**out)


def _env(value: Any) -> dict[str, str]:
    table = _table(value, "env")
    for key, raw in table.items():
        if not ENV_KEY_RE.match(key):
            raise ManifestError(f"env.{key}: names must match [A-Za-z_][A-Za-z0-9_]*")
        if not isinstance(raw, str):
            raise ManifestError(f"env.{key}: must be a string, got {type(raw).__name__}")
    return dict(table)


def _grants(value: Any) -> Grants:
    from .capabilities import GRANTED  # here, not at the top: the capabilities import this module

    table = _table(value, "grants")
    owners = {c.grant_key: c for c in GRANTED if c.grant_key}
    out: dict[str, tuple[str, ...]] = {}
    for key, raw in table.items():
        owner = owners.get(key)
        if owner is None:
            raise ManifestError(f"grants.{key}: unknown capability (known: {', '.join(sorted(owners))})")
        granted = owner.validate_grant(raw)
        if granted:  # `kv = []` grants what no key does: one manifest, one `Grants`
            out[key] = granted
    return Grants(out)


def _http(value: Any) -> dict[str, bool]:
    table = _table(value, "http")
    _known(table, "http", ("public", "forward_credentials"))
    out = {key: table.get(key, False) for key in ("public", "forward_credentials")}
    for key, flag in out.items():
        if not isinstance(flag, bool):
            raise ManifestError(f"http.{key}: must be true or false, got {flag!r}")
    return out


def _int_field(table: dict[str, Any], key: str, where: str, ranges: dict[str, tuple[int, int]]) -> int | None:
    raw = table.get(key)
    if raw is None:
        return None
    lo, hi = ranges[key]
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise ManifestError(f"{where}.{key}: must be {lo}..{hi}, got {raw!r}")
    return raw


def _known(table: dict[str, Any], where: str, known: tuple[str, ...]) -> None:
    for key in table:
        if key not in known:
            raise ManifestError(f"{where}.{key}: unknown field (known: {', '.join(known)})")


def _queue_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not REFERENCE_RE.fullmatch(value):
        raise ManifestError(
            f"{where}: {value!r} is not a valid queue name (letters, digits, '.', '_', '-'; 1..128; "
            "'namespace/queue' for a queue another namespace shares)"
        )
    return value


def _async(value: Any) -> AsyncConfig:
    table = _table(value, "async")
    _known(table, "async", ("retries", "dead_letter_queue"))
    retries = _int_field(table, "retries", "async", ASYNC_RANGES)
    dlq = table.get("dead_letter_queue")
    return AsyncConfig(
        retries=AsyncConfig.retries if retries is None else retries,
        dead_letter_queue=None if dlq is None else _queue_name(dlq, "async.dead_letter_queue"),
    )


def _triggers(
    value: Any, limits: Limits, async_config: AsyncConfig
) -> tuple[tuple[QueueTrigger, ...], tuple[ScheduleTrigger, ...]]:
    table = _table(value, "triggers")
    _known(table, "triggers", ("queue", "schedule"))
    queues: list[QueueTrigger] = []
    for i, raw in enumerate(_array(table.get("queue", []), "triggers.queue")):
        where = f"triggers.queue[{i}]"
        entry = _table(raw, where)
        _known(entry, where, ("queue", *QUEUE_TRIGGER_RANGES, "dead_letter_queue"))
        queue = _queue_name(entry.get("queue"), f"{where}.queue")
        if any(q.queue == queue for q in queues):
            raise ManifestError(f"{where}.queue: queue '{queue}' is already mapped by an earlier trigger")
        ints: dict[str, Any] = {
            k: _int_field(entry, k, where, QUEUE_TRIGGER_RANGES) for k in QUEUE_TRIGGER_RANGES if k in entry
        }
        dlq = entry.get("dead_letter_queue") or async_config.dead_letter_queue or f"{queue}-dlq"
        trigger = QueueTrigger(queue=queue, dead_letter_queue=_queue_name(dlq, f"{where}.dead_letter_queue"), **ints)
        if trigger.dead_letter_queue == queue:
            raise ManifestError(f"{where}.dead_letter_queue: must differ from the queue it serves ('{queue}')")
        if trigger.visibility_timeout_s * 1000 < limits.timeout_ms + trigger.max_batching_window_ms:
            raise ManifestError(
                f"{where}.visibility_timeout_s: {trigger.visibility_timeout_s} s is shorter than the batching "
                f"window ({trigger.max_batching_window_ms} ms) plus the function's limits.timeout_ms "
                f"({limits.timeout_ms} ms): a batch still running would be redelivered; raise it"
            )
        if trigger.pollers > limits.max_concurrency:
            raise ManifestError(
                f"{where}.pollers: {trigger.pollers} batches at once exceed the function's limits.max_concurrency "
                f"({limits.max_concurrency}): the extra ones would only be throttled; lower it or raise the limit"
            )
        queues.append(trigger)
    schedules: list[ScheduleTrigger] = []
    for i, raw in enumerate(_array(table.get("schedule", []), "triggers.schedule")):
        where = f"triggers.schedule[{i}]"
        entry = _table(raw, where)
        _known(entry, where, ("name", "cron", "rate_s", "timezone"))
        name = entry.get("name")
        if not isinstance(name, str) or not RESOURCE_RE.match(name):
            raise ManifestError(f"{where}.name: must be 1..128 letters, digits, '.', '_' or '-', got {name!r}")
        if any(s.name == name for s in schedules):
            raise ManifestError(f"{where}.name: schedule '{name}' is defined twice")
        cron, rate = entry.get("cron"), _int_field(entry, "rate_s", where, {"rate_s": RATE_RANGE})
        if (cron is None) == (rate is None):
            raise ManifestError(f"{where}: set exactly one of cron (e.g. '*/5 * * * *') or rate_s (seconds)")
        if cron is not None and not isinstance(cron, str):
            raise ManifestError(f"{where}.cron: must be a string, got {cron!r}")
        tz = entry.get("timezone", "UTC")
        if not isinstance(tz, str):
            raise ManifestError(f"{where}.timezone: must be an IANA zone name such as 'UTC', got {tz!r}")
        from .triggers import cron as cronlib  # here, not at the top: fnhost.triggers imports this module

        try:
            cronlib.validate(cron, rate, tz)
        except cronlib.CronError as e:
            raise ManifestError(f"{where}.{'timezone' if 'time zone' in str(e) else 'cron'}: {e}") from None
        schedules.append(ScheduleTrigger(name=name, cron=cron, rate_s=rate, timezone=tz))
    return tuple(queues), tuple(schedules)


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ManifestError(f"{where}: must be an array of tables ([[{where}]]), got {type(value).__name__}")
    return value
