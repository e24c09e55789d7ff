"""The one place request input is parsed: JSON bodies, integer query parameters, qualifiers.

Every handler reads its input through these, so a class of malformed input is refused here, once,
as a 400 — never as a `RecursionError` or `OverflowError` deep in a store:

- JSON nests at most `MAX_JSON_DEPTH` levels (a 100k-deep array is refused, not recursed into);
- JSON integers and integer query parameters lie within a signed 64-bit integer (SQLite's range);
- floats are finite (`1e400`, `NaN` and `Infinity` are refused);
- a qualifier is a version number 1..2^63-1 or an alias name;
- a chain depth (`fnhost-chain-depth`) that is absent or not a number is 0 (`fnhost.chains`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ..chains import CHAIN_DEPTH_HEADER, depth_of_header
from ..names import ALIAS
from ..runtime.outcomes import Outcome
from .errors import InvalidRequest

MAX_JSON_DEPTH = 32
INT64_MAX = 2**63 - 1
_MAX_INT_DIGITS = len(str(INT64_MAX)) + 1  # a sign, then at most 19 digits


def _int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS or not -INT64_MAX - 1 <= (value := int(text)) <= INT64_MAX:
        raise InvalidRequest(f"request body: the number {text[:32]}{'...' if len(text) > 32 else ''} is out of "
                             "range (integers must fit in 64 bits)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidRequest(f"request body: the number {text[:32]} is out of range")
    return value


def _constant(text: str) -> Any:
    raise InvalidRequest(f"request body: {text} is not valid JSON (use a number or null)")


def parse_json(raw: bytes | str) -> Any:
    """`raw` as JSON within the limits above, or `InvalidRequest` naming what is wrong."""
    try:
        data = json.loads(raw or b"null", parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise InvalidRequest(f"request body nests too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    level: list[Any] = [data]
    for _ in range(MAX_JSON_DEPTH + 1):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise InvalidRequest(f"request body nests too deeply (at most {MAX_JSON_DEPTH} levels)")


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (see `parse_json`), or `InvalidRequest`."""
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidRequest('request body must be a JSON object, e.g. {"version": 2}')
    return data


def query_int(request: Request, name: str, default: int, least: int, most: int) -> int:
    """An integer query parameter in `least..most` (ASCII digits only), or `InvalidRequest`."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_INT_DIGITS) or not least <= int(raw) <= most:
        raise InvalidRequest(f"{name}: must be an integer {least}..{most}, got {raw[:40]!r}")
    return int(raw)


def query_bool(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter: `true`/`false` (also 1/0), or `InvalidRequest`."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise InvalidRequest(f"{name}: must be true or false, got {raw[:40]!r}")


def qualifier_of(request: Request) -> str | int | None:
    """`?qualifier=`: None (live), a version number 1..2^63-1, or an alias name; else `InvalidRequest`."""
    raw = request.query_params.get("qualifier") or None
    return None if raw is None else parse_qualifier(raw, "qualifier")


def parse_qualifier(raw: str, where: str) -> str | int:
    """A version number 1..2^63-1 or an alias name (`where` names the input in the message)."""
    if raw.isascii() and raw.isdigit():
        if len(raw) > _MAX_INT_DIGITS or not 1 <= int(raw) <= INT64_MAX:
            raise InvalidRequest(f"{where}: version numbers are 1..{INT64_MAX}, got {raw[:40]!r}")
        return int(raw)
    if not ALIAS.matches(raw):
        raise InvalidRequest(f"{where}: must be a version number or an alias ({ALIAS.rule}), got {raw[:40]!r}")
    return raw


def outcome_of(request: Request) -> str | None:
    """`?outcome=`: None (every outcome) or an invocation outcome (`ok`, `timeout`...); else `InvalidRequest`."""
    raw = request.query_params.get("outcome") or None
    if raw is None:
        return None
    known = [o.value for o in Outcome]
    if raw not in known:
        raise InvalidRequest(f"outcome: must be one of {', '.join(known)}, got {raw[:40]!r}")
    return raw


def chain_depth_of(request: Request) -> int:
    """The chain depth a request claims (the header functions' outbound requests carry); 0 by default."""
    return depth_of_header(request.headers.get(CHAIN_DEPTH_HEADER))
