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
            raise HostCallError(ErrorKind.NOT_FOUND, f"secret '{name}' is granted but not set")
        state.charge(len(value))
        return value
