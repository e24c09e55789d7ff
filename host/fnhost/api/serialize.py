"""Turns the library's records (dataclasses, enums, manifests) into JSON-ready values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any

from ..manifest import Manifest
from ..stores.invocations import InvocationRecord


def jsonable(value: Any) -> Any:
    if isinstance(value, Manifest):
        return value.to_dict()
    if isinstance(value, InvocationRecord):  # its outbound requests are stored as JSON text
        fields = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {**fields, "outbound": json.loads(value.outbound)}
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
