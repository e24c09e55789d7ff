"""The connection layer under httpx: resolve once, check, connect to the checked address, and
never let one read or write outlive the invocation.

httpx's pool (httpcore's `ConnectionPool`) keys connections by origin — scheme, host *name*, port —
and asks its network backend for a new one. `PinnedBackend` is that backend: it resolves the name
once (with a timeout; `getaddrinfo` has none of its own), checks every address with
`addresses.refusal`, and connects to an address that passed. The name is never looked up again
for that connection, and a pooled connection is only ever reused for the same name (the pool's
key), so an address checked for one name is never reached through another. Connections made for
a grant that names its host literally (which may reach private addresses) live in a pool of their
own (`Egress`), so a wildcard grant never reuses one.

Every read and write is cut short at the running request's deadline (`deadline_scope`), which
httpx's per-operation timeouts alone cannot do: a server that trickles a byte per second would
keep a read timeout from ever firing.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import ssl
import threading
import time
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any

import httpcore
from httpcore._backends.sync import SyncStream

from .addresses import refusal


class Refused(Exception):
    """The destination's address is not one a function may reach (the message says which rule)."""


class DeadlineExceeded(Exception):
    """The request ran out of the invocation's time."""


_scope = threading.local()


@contextmanager
def deadline_scope(deadline: float) -> Iterator[None]:
    """Every network operation on this thread ends by `deadline` (time.monotonic()) while inside."""
    previous = getattr(_scope, "deadline", math.inf)
    _scope.deadline = deadline
    try:
        yield
    finally:
        _scope.deadline = previous


def remaining(timeout: float | None = None) -> float:
    """Seconds left before the current deadline, at most `timeout`; DeadlineExceeded when none are."""
    left = getattr(_scope, "deadline", math.inf) - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the invocation's time ran out")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the deadline of the request using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, remaining(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, remaining(timeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to a checked address of the name it is given (module docstring).
    `literal`: this pool serves only grants that name their host literally."""

    RESOLVERS = 4

    def __init__(self, *, literal: bool) -> None:
        self.literal = literal
        self._resolvers = ThreadPoolExecutor(self.RESOLVERS, thread_name_prefix="fnhost-egress-dns")

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        refused: list[str] = []
        last: OSError | None = None
        for family, sockaddr in self.resolve(host, port):
            why = refusal(ipaddress.ip_address(sockaddr[0]), self.literal)
            if why is not None:
                refused.append(f"{sockaddr[0]} ({why})")
                continue
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining(timeout))
                sock.connect(sockaddr)
            except TimeoutError:
                sock.close()
                raise httpcore.ConnectTimeout(f"connecting to {sockaddr[0]} port {port} timed out") from None
            except OSError as e:
                sock.close()
                last = e
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return DeadlineStream(SyncStream(sock))
        if refused and last is None:
            raise Refused(
                f"'{host}' resolves to {', '.join(refused)}; a function reaches such an address only "
                "through a grant that names the host literally (docs/security.md, Outbound HTTP)"
            )
        raise httpcore.ConnectError(f"cannot connect to '{host}' port {port}: {last}")

    def resolve(self, host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[typing.Any, ...]]]:
        """The addresses of `host`, looked up once, by the deadline."""
        try:
            ipaddress.ip_address(host)
            literal_ip = True
        except ValueError:
            literal_ip = False

        def lookup() -> list[tuple[Any, ...]]:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

        try:
            if literal_ip:
                infos = lookup()
            else:
                infos = self._resolvers.submit(lookup).result(timeout=remaining())
        except FutureTimeout:
            raise DeadlineExceeded(f"looking up '{host}' took longer than the invocation has left") from None
        except socket.gaierror as e:
            raise httpcore.ConnectError(f"cannot resolve '{host}': {e.strerror}") from None
        seen: list[tuple[socket.AddressFamily, tuple[typing.Any, ...]]] = []
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in seen:
                seen.append((family, sockaddr))
        return seen

    def close(self) -> None:
        self._resolvers.shutdown(wait=False, cancel_futures=True)
