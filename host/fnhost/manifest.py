"""The function manifest (`fnhost.toml`): one definition of every field, its default and its range.

A manifest is parsed from TOML text or a plain dict. Every validation error names the field and the
reason, e.g. ``limits.memory_mb: must be 1..4096, got 0``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ManifestError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
"""Function, bucket, queue and secret names: lower-case letters, digits and '-', 1..63 chars."""
RESOURCE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class Limits:
    """Per-invocation resource limits. Ranges are enforced by `Manifest.from_dict`."""

    memory_mb: int = 128
    timeout_ms: int = 5_000
    fuel: int = 20_000_000_000  # Python-in-wasm burns ~4e9 fuel/s here: ~5 s of CPU.
    max_concurrency: int = 8
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
    "instance_reuse": (0, 100_000),
    "max_host_calls": (0, 10_000_000),
    "max_host_bytes": (0, 1 << 40),
    "max_log_bytes": (0, 64 * 1024 * 1024),
    "max_response_bytes": (0, 1 << 30),
}


@dataclass(frozen=True)
class Grants:
    """What the function may reach. Anything else is denied at call time."""

    kv: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    name: str
    module: str = "function.wasm"
    limits: Limits = field(default_factory=Limits)
    env: dict[str, str] = field(default_factory=dict)
    grants: Grants = field(default_factory=Grants)
    public: bool = False  # function URL reachable without an API key

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
        known = {"name", "module", "limits", "env", "grants", "http", "build"}
        for key in data:
            if key not in known:
                raise ManifestError(f"{key}: unknown field (known: {', '.join(sorted(known))})")
        name = data.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ManifestError(
                f"name: must be 1..63 lower-case letters, digits or '-', starting with a letter, got {name!r}"
            )
        module = data.get("module", "function.wasm")
        if not isinstance(module, str) or not module or module.startswith("/") or ".." in module.split("/"):
            raise ManifestError(f"module: must be a relative path inside the bundle, got {module!r}")
        return cls(
            name=name,
            module=module,
            limits=_limits(data.get("limits", {})),
            env=_env(data.get("env", {})),
            grants=_grants(data.get("grants", {})),
            public=_http(data.get("http", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grants"] = {k: list(v) for k, v in d["grants"].items()}
        d["http"] = {"public": d.pop("public")}
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
    table = _table(value, "grants")
    out: dict[str, tuple[str, ...]] = {}
    for key, raw in table.items():
        if key not in ("kv", "queues", "secrets"):
            raise ManifestError(f"grants.{key}: unknown capability (known: kv, queues, secrets)")
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ManifestError(f"grants.{key}: must be a list of names, got {raw!r}")
        for item in raw:
            if not RESOURCE_RE.match(item):
                raise ManifestError(
                    f"grants.{key}: {item!r} is not a valid name (letters, digits, '.', '_', '-'; 1..128)"
                )
        out[key] = tuple(dict.fromkeys(raw))
    return Grants(**out)


def _http(value: Any) -> bool:
    table = _table(value, "http")
    for key in table:
        if key != "public":
            raise ManifestError(f"http.{key}: unknown field (known: public)")
    public = table.get("public", False)
    if not isinstance(public, bool):
        raise ManifestError(f"http.public: must be true or false, got {public!r}")
    return public
