"""Reading operator-set secrets; a function reads only the secrets granted to it. Values never
reach logs or errors: messages name the secret, not its value. A granted secret may be set after
the deploy; reading it before is `not-found`."""

from __future__ import annotations

from ..stores.secrets import SecretStore
from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import operation
from .state import CallState

SECRET = "secret"


class SecretsCapability(Capability):
    interface = "secrets"
    grant_key = "secrets"
    kind = SECRET
    noun = "secret"

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    @operation()
    def get(self, state: CallState, name: str) -> str:
        stored = self.store_name(state, name)
        state.charge(len(name))
        value = self.store.get(stored)
        if value is None:
            # The WIT's not-found carries no text, so the invocation's log says which secret and how to set it.
            message = f"secret '{name}' is granted but not set; set it with `fnhost secrets set {name}`"
            state.logs.add(f"[fnhost] {message}")
            raise HostCallError(ErrorKind.NOT_FOUND, message)
        state.charge(len(value))
        return value
