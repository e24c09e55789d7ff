"""Secrets set by an operator and granted in the manifest (`[grants] secrets = [...]`)."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import secrets as _secrets

from ._errors import host_error


def get(name: str) -> str:
    """The secret's value. Raises `NotFound` if it is granted but not set."""
    try:
        return _secrets.get(name)
    except Err as e:
        raise host_error(e) from None
