"""The shape every capability has (after Spin's factors), and the contract versions it is linked into.

A capability is one module with one `Capability` subclass. It owns, end to end:

1. its manifest key (`grant_key`, e.g. `[grants] kv = [...]`) and its validation (`validate_grant`,
   called by `Manifest.from_dict`: a grant it cannot honour never reaches a deploy);
2. the resources a manifest hands a function through it (`resources`), which the deploy-time
   authorization (`fnhost.control.grants`) checks against the deployer and the namespace's shares;
3. the per-version allowed set (`allowed`): each name as the guest asks for it → the store name it
   reaches, resolved once per function version in the function's namespace (`fnhost.namespaces`);
4. its store (given to its constructor) and its operations, each declared once with `@operation`,
   from which both the component binding and the core-ABI binding are derived (`operations`),
   linked into every contract version that has them.

Adding a capability is adding one module with such a class, listed in `fnhost.capabilities`
(plus its WIT interface and SDK wrappers).

Contract versions: the WIT package `fnhost:function@X` for components, one core import module per
version for core modules (`CORE_MODULES`). A version only adds operations; every operation of an
older version stays in the newer ones with the same signature, and the host serves every version
in `CONTRACT_VERSIONS` (docs/contract.md, Versioning).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import wasmtime
from wasmtime.component import LinkerInstance

from ..errors import ManifestError
from ..manifest import REFERENCE_RE, Manifest
from ..namespaces import DEFAULT, is_foreign, namespace_of, resolve
from .errors import ErrorKind, HostCallError
from .operations import Operation, operations_of, parse_version
from .state import CallState, GuestMemory, LogBuffer, LogMemory, current_state, set_current_state

GRANT_GLOB_RE = re.compile(r"([a-z][a-z0-9-]{0,62}/)?[a-zA-Z0-9*?][a-zA-Z0-9._*?-]{0,127}")
"""A `--may-grant` pattern's name part for namespaced resources: a resource name, `*` and `?` allowed."""

PACKAGE = "fnhost:function"
CONTRACT_VERSIONS = ("0.1.0", "0.2.0")
"""Every version of the guest contract this host serves, oldest first."""
CORE_MODULES = {"0.1.0": "fnhost", "0.2.0": "fnhost@0.2.0"}
"""The core-ABI import module of each contract version (0.1.0's predates versioned names)."""


class Capability:
    """Base of the capabilities; see the module docstring for what a subclass declares."""

    interface: ClassVar[str]
    """The WIT interface name; also the prefix of its core imports (`kv` → `kv_get`)."""
    grant_key: ClassVar[str | None] = None
    """Its key under `[grants]` in fnhost.toml; None: it needs no grant."""
    kind: ClassVar[str] = ""
    """The resource kind in shares, `--may-grant` patterns and messages (`kv`, `queue`, `secret`)."""
    noun: ClassVar[str] = ""
    """How a denial names one resource (`kv bucket 'x' is not granted...`)."""
    namespaced: ClassVar[bool] = True
    """Whether its grants name resources of a namespace (kv buckets, queues, secrets: shared per
    namespace, `other-ns/name` through a share); False for grants that mean the same thing from
    every namespace (outbound origins): then nothing is qualified, shared or foreign."""
    written_when_empty: ClassVar[bool] = True
    """Whether a manifest's JSON lists its key when nothing is granted (False for capabilities added
    after 0.1.0, so that the stored JSON of manifests that do not use them stays the same)."""
    grant_pattern_example: ClassVar[str] = ""
    """Examples of `--may-grant` patterns of its kind, for messages."""

    # -- manifest and grants (per app) ------------------------------------------------------------
    @classmethod
    def validate_grant(cls, raw: object) -> tuple[str, ...]:
        """The value of `[grants] <grant_key>`, checked: resource references, duplicates dropped."""
        where = f"grants.{cls.grant_key}"
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ManifestError(f"{where}: must be a list of names, got {raw!r}")
        for item in raw:
            if not REFERENCE_RE.fullmatch(item):
                raise ManifestError(
                    f"{where}: {item!r} is not a valid name (letters, digits, '.', '_', '-'; 1..128), "
                    "optionally after 'namespace/' for a resource another namespace shares"
                )
        return tuple(dict.fromkeys(raw))

    @classmethod
    def is_grant_pattern(cls, glob: str) -> bool:
        """Whether `glob` (after `kind:` in a `--may-grant` pattern) can match grants of this capability."""
        return bool(GRANT_GLOB_RE.fullmatch(glob))

    @classmethod
    def store_name_of(cls, namespace: str, reference: str) -> str:
        """The store name a manifest reference reaches from `namespace` (`fnhost.namespaces`). A
        capability whose grants are not namespaced resources (an outbound origin) returns `reference`."""
        return resolve(namespace, reference)

    @classmethod
    def resources(cls, manifest: Manifest) -> list[tuple[str, str]]:
        """Every resource `manifest` hands its function through this capability, as
        (reference as the manifest writes it, the manifest field) — what a deploy must authorize."""
        if cls.grant_key is None:
            return []
        return [(ref, f"grants.{cls.grant_key}") for ref in manifest.grants.get(cls.grant_key)]

    @classmethod
    def allowed(cls, manifest: Manifest, namespace: str) -> dict[str, str]:
        """The allowed set of one function version: guest-side name → store name."""
        if cls.grant_key is None:
            return {}
        return {ref: cls.store_name_of(namespace, ref) for ref in manifest.grants.get(cls.grant_key)}

    # -- per invocation ----------------------------------------------------------------------------
    def store_name(self, state: CallState, name: str) -> str:
        """The store name of a granted resource; `denied` (naming the grant to add) for any other."""
        stored = state.grants.of_kind(self.kind).get(name)
        if stored is None:
            raise state.deny(f"{self.noun} '{name}'")
        return stored

    # -- linking (per engine) --------------------------------------------------------------------
    @classmethod
    def operations(cls) -> tuple[Operation, ...]:
        return operations_of(cls)

    @classmethod
    def operations_in(cls, version: str) -> list[Operation]:
        v = parse_version(version)
        return [op for op in cls.operations() if op.since <= v]

    def link_component(self, root: LinkerInstance) -> None:
        for version in CONTRACT_VERSIONS:
            ops = self.operations_in(version)
            if ops:
                with root.add_instance(f"{PACKAGE}/{self.interface}@{version}") as iface:
                    for op in ops:
                        iface.add_func(op.name, op.component_func(self))

    def link_core(self, linker: wasmtime.Linker) -> None:
        for version in CONTRACT_VERSIONS:
            for op in self.operations_in(version):
                name = op.core_name(self.interface)
                linker.define_func(CORE_MODULES[version], name, op.core_type(), op.core_func(self), access_caller=True)

    def close(self) -> None:
        """Stop any background work (the host is closing)."""


class CoreResults(Capability):
    """`result_len` / `result_read` of every core import module: how a core guest reads the pending
    result of its last host call. Not an operation: they neither charge the budget nor fail."""

    interface = "result"

    def link_component(self, root: LinkerInstance) -> None:
        """Components get results as values."""

    def link_core(self, linker: wasmtime.Linker) -> None:
        i32 = wasmtime.ValType.i32()

        def result_len() -> int:
            return len(current_state().pending)

        def result_read(caller: wasmtime.Caller, dst: int) -> int:
            state = current_state()
            data, state.pending = state.pending, b""
            try:
                GuestMemory(caller).write(dst, data)
            except HostCallError:
                return -1
            return len(data)

        for module in CORE_MODULES.values():
            linker.define_func(module, "result_len", wasmtime.FuncType([], [i32]), result_len)
            linker.define_func(module, "result_read", wasmtime.FuncType([i32], [i32]), result_read, access_caller=True)


@dataclass(frozen=True)
class VersionGrants:
    """The allowed sets of one function version, shared by all its invocations: per resource kind,
    each name as the guest asks for it (the manifest's) → the store name it reaches."""

    sets: Mapping[str, Mapping[str, str]]
    namespace: str = DEFAULT
    global_kinds: frozenset[str] = frozenset()  # kinds whose grants are not namespaced (never foreign)

    @classmethod
    def of(cls, manifest: Manifest, function: str) -> VersionGrants:
        """The grants of `manifest`, resolved in the namespace of `function` (a store name)."""
        from . import CAPABILITIES

        namespace = namespace_of(function)
        sets = {c.kind: c.allowed(manifest, namespace) for c in CAPABILITIES if c.grant_key}
        return cls(sets, namespace, frozenset(c.kind for c in CAPABILITIES if c.grant_key and not c.namespaced))

    def of_kind(self, kind: str) -> Mapping[str, str]:
        return self.sets.get(kind, {})

    @functools.cached_property
    def foreign(self) -> bool:
        """Whether any grant names another namespace's resource (then `shared_only` applies per call)."""
        return any(
            is_foreign(self.namespace, s)
            for kind, m in self.sets.items()
            if kind not in self.global_kinds
            for s in m.values()
        )

    def shared_only(self, shared: Callable[[str, str, str], bool]) -> VersionGrants:
        """These grants without the other namespaces' resources that are not shared (any more):
        `shared(kind, store name, namespace)` says which are."""
        ns = self.namespace

        def keep(kind: str, grants: Mapping[str, str]) -> Mapping[str, str]:
            if kind in self.global_kinds:
                return grants
            return {ref: s for ref, s in grants.items() if not is_foreign(ns, s) or shared(kind, s, ns)}

        return VersionGrants({kind: keep(kind, g) for kind, g in self.sets.items()}, ns, self.global_kinds)


__all__ = [
    "CONTRACT_VERSIONS",
    "CORE_MODULES",
    "PACKAGE",
    "CallState",
    "Capability",
    "CoreResults",
    "ErrorKind",
    "GuestMemory",
    "HostCallError",
    "LogBuffer",
    "LogMemory",
    "VersionGrants",
    "current_state",
    "set_current_state",
]
