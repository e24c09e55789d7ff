"""Python exceptions for the WIT `error` variant that every capability call may return."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import types


class HostError(Exception):
    """A host call failed in an expected way. `code` is the WIT error case (`denied`, `not-found`...)."""

    code = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class Denied(HostError):
    """The manifest does not grant this bucket, queue or secret."""

    code = "denied"


class NotFound(HostError):
    code = "not-found"


class TooLarge(HostError):
    """A key, value, message or name is over its size limit."""

    code = "too-large"


class LimitExceeded(HostError):
    """The per-invocation host-call budget (count or bytes) is spent."""

    code = "limit-exceeded"


class Unavailable(HostError):
    """The backing store failed; the call may be retried."""

    code = "unavailable"


class Timeout(HostError):
    """An outbound HTTP request got no complete response in time (`fnhost_sdk.http`)."""

    code = "timeout"


class InvalidArgument(HostError):
    """Malformed argument (empty key, bad name...)."""

    code = "invalid"


_BY_CASE: dict[type, type[HostError]] = {
    types.Error_Denied: Denied,
    types.Error_NotFound: NotFound,
    types.Error_TooLarge: TooLarge,
    types.Error_LimitExceeded: LimitExceeded,
    types.Error_Unavailable: Unavailable,
    types.Error_Invalid: InvalidArgument,
}


def host_error(err: Err) -> HostError:
    """The `HostError` for an `Err(types.Error_*)` raised by a generated import binding."""
    case = err.value
    cls = _BY_CASE.get(type(case))
    if cls is None:  # not a WIT error: a bug in the bindings, not something a guest can handle
        raise err
    return cls(getattr(case, "value", ""))
