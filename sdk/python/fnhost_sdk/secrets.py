"""Secrets set by an operator and granted in the manifest (`[grants] secrets = [...]`)."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import secrets as _secrets

from ._errors import NotFound, host_error


def get(name: str) -> str:
    """The secret's value. Raises `NotFound` if it is granted but not set."""
    try:
        return _secrets.get(name)
    except Err as e:
        error = host_error(e)
    if isinstance(error, NotFound):  # the WIT's not-found has no text: say which secret, and the fix
        raise NotFound(f"secret {name!r} is granted but not set; set it with `fnhost secrets set {name}`")
    raise error
