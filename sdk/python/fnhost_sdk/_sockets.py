"""Sockets inside a function fail with a message that names the way out, `fnhost_sdk.http`.

A component has no network: without this, `urllib.request.urlopen` fails with the misleading
`LookupError: unknown encoding: idna` (the name is encoded before WASI refuses the socket), and a
raw socket with a bare `PermissionError`.
"""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any, NoReturn

MESSAGE = (
    "a function has no sockets: make HTTP requests with fnhost_sdk.http (http.get, http.request), "
    'to an origin granted in fnhost.toml ([grants] http = ["https://api.example.com"])'
)


class NoNetwork(PermissionError):
    """Raised by socket calls inside a function; see `fnhost_sdk.http`."""


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise NoNetwork(errno.EACCES, MESSAGE)


def install() -> None:
    """Only inside a function (WASI): a host process that imports the SDK (tests, tools) keeps its sockets."""
    if sys.platform != "wasi":
        return
    socket.getaddrinfo = _refuse
    socket.gethostbyname = _refuse
    socket.gethostbyname_ex = _refuse
    socket.create_connection = _refuse
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
