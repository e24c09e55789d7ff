"""`Request` and `Response`: the HTTP handler's input and output."""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HeaderItems = Iterable[tuple[str, str]] | Mapping[str, str]


class Headers:
    """HTTP headers: an ordered list of (name, value) with case-insensitive lookup. Names may repeat."""

    def __init__(self, items: HeaderItems | None = None) -> None:
        pairs = items.items() if isinstance(items, Mapping) else (items or ())
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in pairs]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        name = name.lower()
        return next((v for k, v in self._items if k == name), default)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, name: str, value: str) -> None:
        self._items.append((name.lower(), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with `value`."""
        name = name.lower()
        self._items = [(k, v) for k, v in self._items if k != name]
        self._items.append((name, value))

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """An HTTP request routed to the function URL. `path` excludes the query; `query` keeps the
    first value of each parameter (all of them are in `query_list`)."""

    def __init__(
        self, method: str, path_with_query: str, headers: HeaderItems | None = None, body: bytes = b""
    ) -> None:
        self.method = method
        self.path_with_query = path_with_query
        parts = urlsplit(path_with_query)
        self.path = parts.path or "/"
        self.query_list: list[tuple[str, str]] = parse_qsl(parts.query, keep_blank_values=True)
        self.query: dict[str, str] = {}
        for k, v in self.query_list:
            self.query.setdefault(k, v)
        self.headers = Headers(headers)
        self.body = bytes(body)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON (raises `ValueError` if it is not)."""
        return _json.loads(self.body.decode())  # JSON is UTF-8 (RFC 8259)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path_with_query}, {len(self.body)} bytes)"


class Response:
    """An HTTP response. `Response(b"...")` sends raw bytes; `Response.json` / `Response.text` encode."""

    def __init__(self, body: bytes | str = b"", status: int = 200, headers: HeaderItems | None = None) -> None:
        if not 200 <= status <= 599:  # 1xx are interim, never a final response
            raise ValueError(f"HTTP status must be 200..599, got {status}")
        self.status = status
        self.headers = Headers(headers)
        self.body = body.encode() if isinstance(body, str) else bytes(body)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: HeaderItems | None = None) -> Response:
        r = cls(_json.dumps(obj, separators=(",", ":")).encode(), status, headers)
        if "content-type" not in r.headers:
            r.headers.add("content-type", "application/json")
        return r

    @classmethod
    def text(cls, text: str, status: int = 200, headers: HeaderItems | None = None) -> Response:
        r = cls(text.encode(), status, headers)
        if "content-type" not in r.headers:
            r.headers.add("content-type", "text/plain; charset=utf-8")
        return r

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


def to_response(value: object) -> Response:
    """What an HTTP handler returned, as a `Response`: dict/list → JSON, str → text, bytes → raw."""
    if isinstance(value, Response):
        return value
    if isinstance(value, (dict, list)):
        return Response.json(value)
    if isinstance(value, str):
        return Response.text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Response(bytes(value))
    raise TypeError(f"an HTTP handler must return a Response, dict, list, str or bytes, not {type(value).__name__}")
