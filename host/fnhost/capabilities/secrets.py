"""Reading operator-set secrets; a function reads only the secrets granted to it. Values never
reach logs or errors: messages name the secret, not its value."""

from __future__ import annotations

from wasmtime import Linker
from wasmtime.component import LinkerInstance

from ..manifest import Manifest
from ..stores.secrets import SecretStore
from .base import I32, CallState, ErrorKind, HostCallError, component_func, define_core

INTERFACE = "fnhost:function/secrets@0.1.0"


class SecretsCapability:
    name = "secrets"

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    def check_grants(self, manifest: Manifest) -> None:
        """A granted secret may be set after the deploy; reading it before is `not-found`."""

    def get(self, state: CallState, name: str) -> str:
        stored = state.grants.secrets.get(name)
        if stored is None:
            raise state.deny(f"secret '{name}'")
        state.charge(len(name))
        value = self.store.get(stored)
        if value is None:
            # The WIT's not-found carries no text, so the invocation's log says which secret and how to set it.
            message = f"secret '{name}' is granted but not set; set it with `fnhost secrets set {name}`"
            state.logs.add(f"[fnhost] {message}")
            raise HostCallError(ErrorKind.NOT_FOUND, message)
        state.charge(len(value))
        return value

    def link_component(self, root: LinkerInstance) -> None:
        with root.add_instance(INTERFACE) as iface:
            iface.add_func("get", component_func(self.get))

    def link_core(self, linker: Linker) -> None:
        define_core(
            linker, "secrets_get", [I32] * 2, lambda s, m, np, nl: self.get(s, m.read_str(np, nl)).encode()
        )
