"""Expected failures of host calls: the WIT `types.error` cases and their core-ABI codes."""

from __future__ import annotations

from enum import Enum

from ..stores.errors import ChainTooDeep, CorruptBlob, InvalidArgument, StoreError, StoreUnavailable, TooLarge


class ErrorKind(Enum):
    """The WIT `types.error` cases, with their core-ABI codes."""

    DENIED = ("denied", 1)
    NOT_FOUND = ("not-found", 2)
    TOO_LARGE = ("too-large", 3)
    LIMIT_EXCEEDED = ("limit-exceeded", 4)
    UNAVAILABLE = ("unavailable", 5)
    INVALID = ("invalid", 6)
    TIMEOUT = ("timeout", 7)  # outbound HTTP only (`outbound-http.http-error`)

    def __init__(self, case: str, code: int) -> None:
        self.case = case
        self.code = code

    @classmethod
    def of_case(cls, case: str) -> ErrorKind:
        return next(k for k in cls if k.case == case)


class HostCallError(Exception):
    """An expected failure of a host call, returned to the guest as a WIT error (never a trap)."""

    def __init__(self, kind: ErrorKind, message: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @classmethod
    def from_store(cls, error: StoreError) -> HostCallError:
        if isinstance(error, TooLarge):
            return cls(ErrorKind.TOO_LARGE, str(error))
        if isinstance(error, InvalidArgument):
            return cls(ErrorKind.INVALID, str(error))
        if isinstance(error, ChainTooDeep):
            return cls(ErrorKind.LIMIT_EXCEEDED, str(error))
        if isinstance(error, StoreUnavailable | CorruptBlob):
            return cls(ErrorKind.UNAVAILABLE, str(error))
        return cls(ErrorKind.UNAVAILABLE, f"store error: {type(error).__name__}")
