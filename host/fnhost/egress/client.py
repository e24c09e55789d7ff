"""`Egress`: outbound HTTP requests for functions, over pooled httpx connections.

One `Egress` per host. `request` sends one request of a function and follows its redirects
(each hop authorized again by the caller's `authorize`, at most `max_redirects`), with
- the URL parsed and checked by `origins` (no userinfo, canonical hosts, http/https only);
- the connection made by `transport.PinnedBackend` (resolved once, the address checked, then
  connected to), TLS verified against the system's CAs (certifi) plus the operator's `ca_file`;
- the whole exchange, redirects included, ending by its deadline (the smaller of its timeout and
  the invocation's time left), however slowly the server sends;
- the request body capped before sending and the response body capped while it is read (a
  response over the cap is abandoned, never buffered whole);
- every hop appended to `log` as an `Exchange` (method, origin, status, bytes, ms);
- the headers the host owns refused from the guest: those set from the URL and body, and the chain
  depth (`fnhost.chains`), which the caller passes in `host_headers` and every hop carries.
Failures are `EgressFailure` with the kind the guest sees (`timeout`, `too-large`, `denied`,
`unavailable`, `invalid`, `limit-exceeded`) and a message naming the cause and the fix.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import certifi
import httpcore
import httpx

from ..chains import CHAIN_DEPTH_HEADER, DOCS
from .origins import OriginError, Target, parse_url
from .transport import DeadlineExceeded, PinnedBackend, Refused, deadline_scope


class EgressMode(enum.StrEnum):
    """The operator's switch (`fnhost serve --egress`)."""

    OFF = "off"  # no function makes outbound requests, whatever its grants
    ALLOWLIST = "allowlist"  # only to the origins its manifest grants (the default)
    PUBLIC = "public"  # also to any origin on a public address, granted or not


@dataclass(frozen=True)
class EgressConfig:
    """Outbound HTTP settings of one host (`Host(egress=...)`)."""

    mode: EgressMode = EgressMode.ALLOWLIST
    max_request_bytes: int = 10 << 20
    max_response_bytes: int = 10 << 20
    max_requests_per_invocation: int = 50  # redirect hops count
    max_redirects: int = 5
    default_timeout_ms: int = 30_000  # when the guest gives none; never past the invocation's deadline
    max_connections: int = 100  # per pool (there are two: grants naming a host literally, and others)
    ca_file: str | None = None  # more CA certificates to trust (PEM), e.g. an internal CA

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", EgressMode(self.mode))


class EgressFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Exchange:
    """One request on the wire (each redirect hop is one), as the invocation record keeps it."""

    method: str
    origin: str
    grant: str | None  # the grant that allowed it (None: `--egress public`)
    status: int | None  # None: no response (see `error`)
    bytes_sent: int
    bytes_received: int
    ms: float
    error: str | None = None  # the failure kind, when there is no status


GUEST_RESERVE_MS = 100
"""Time a request leaves of the invocation's (at most a tenth of what is left): a request cut at
the deadline itself would leave the guest no time to handle its `timeout`."""

MAX_RECORDED = 1000
"""The most exchanges one invocation record keeps (the per-invocation request cap is usually lower)."""


def exchanges_json(exchanges: Sequence[Exchange]) -> str:
    """The invocation record's `outbound` column: a JSON list of the exchanges, at most `MAX_RECORDED`."""
    if not exchanges:  # most invocations: no json.dumps on the invocation's path
        return "[]"
    return json.dumps([dataclasses.asdict(e) for e in exchanges[:MAX_RECORDED]], separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Hop:
    """What `authorize` says about a target: the grant that allows it and whether it names the host literally."""

    grant: str | None
    literal: bool


Authorize = Callable[[Target, str | None], Hop]
"""(the target, the origin that redirected to it or None) → the hop's grant; raises to refuse."""

_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MANAGED = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
_CREDENTIALS = {"authorization", "cookie", "proxy-authorization"}
_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass
class _Request:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = field(repr=False)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over an httpcore pool with our network backend (httpx does not take a
    backend as an argument: the pool it builds is replaced, once, before any use)."""

    def __init__(self, context: ssl.SSLContext, limits: httpx.Limits, backend: PinnedBackend) -> None:
        super().__init__(verify=context, trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class Egress:
    def __init__(self, config: EgressConfig | None = None) -> None:
        self.config = config or EgressConfig()
        context = ssl.create_default_context(cafile=certifi.where())
        if self.config.ca_file:
            context.load_verify_locations(cafile=self.config.ca_file)
        limits = httpx.Limits(max_connections=self.config.max_connections, keepalive_expiry=30)
        self._backends = {literal: PinnedBackend(literal=literal) for literal in (False, True)}
        self._clients = {
            literal: httpx.Client(
                transport=_PinnedTransport(context, limits, backend), trust_env=False, follow_redirects=False
            )
            for literal, backend in self._backends.items()
        }
        for client in self._clients.values():
            client.headers.clear()  # only what the guest sends (no Accept-Encoding: bodies reach it as sent)
            client.headers["user-agent"] = "fnhost"

    def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        timeout_ms: int | None,
        deadline: float,
        authorize: Authorize,
        log: list[Exchange],
        host_headers: Sequence[tuple[str, str]] = (),
    ) -> Reply:
        """Send one request of a function and follow its redirects (module docstring). `log` is the
        invocation's list of exchanges so far: it is appended to, and bounds the requests made.
        `host_headers` are added to the guest's (which may not set them) on every hop."""
        cfg = self.config
        req = _Request(_method(method), url, [*_headers(headers), *host_headers], bytes(body))
        if len(req.body) > cfg.max_request_bytes:
            raise EgressFailure(
                "too-large",
                f"request body of {len(req.body)} bytes is over the host's limit of {cfg.max_request_bytes} bytes",
            )
        wanted_ms = cfg.default_timeout_ms if timeout_ms is None else timeout_ms
        left_ms = (deadline - time.monotonic()) * 1000
        left_ms -= min(GUEST_RESERVE_MS, left_ms / 10)  # so the guest can still answer after a timeout
        if left_ms <= 0:
            raise EgressFailure("timeout", "the invocation has no time left for a request")
        limit_ms = min(wanted_ms, left_ms)
        by_whom = "the request's timeout_ms" if wanted_ms <= left_ms else "the invocation's remaining time"
        request_deadline = time.monotonic() + limit_ms / 1000
        via: str | None = None
        for hop in range(cfg.max_redirects + 1):
            if len(log) >= cfg.max_requests_per_invocation:
                raise EgressFailure(
                    "limit-exceeded",
                    f"this invocation has made its {cfg.max_requests_per_invocation} outbound requests "
                    "(redirects count; the host's max_requests_per_invocation)",
                )
            try:
                target = parse_url(req.url)
            except OriginError as e:
                raise EgressFailure(e.kind if hop == 0 else "denied", _redirected(str(e), hop)) from None
            try:
                allowed = authorize(target, via)
            except Exception:  # refused before any connection: recorded all the same (and counted)
                log.append(Exchange(req.method, target.origin, None, None, 0, 0, 0.0, "denied"))
                raise
            reply = self._send(req, target, allowed, request_deadline, limit_ms, by_whom, log)
            location = dict(reply.headers).get("location")
            if reply.status not in _REDIRECTS or location is None:
                return reply
            req, via = _follow(req, target, reply.status, location), target.origin
        raise EgressFailure(
            "unavailable",
            f"more than {cfg.max_redirects} redirects (last to {req.url!r}); fnhost follows at most "
            f"{cfg.max_redirects}",
        )

    def _send(
        self,
        req: _Request,
        target: Target,
        allowed: Hop,
        deadline: float,
        limit_ms: float,
        by_whom: str,
        log: list[Exchange],
    ) -> Reply:
        cap = self.config.max_response_bytes
        client = self._clients[allowed.literal]
        t0 = time.perf_counter()
        received = 0
        sent = len(req.body) + sum(len(k) + len(v) for k, v in req.headers)

        def done(status: int | None, error: str | None = None) -> None:
            ms = (time.perf_counter() - t0) * 1000
            log.append(Exchange(req.method, target.origin, allowed.grant, status, sent, received, round(ms, 3), error))

        status: int | None = None
        try:
            with deadline_scope(deadline):
                request = client.build_request(
                    req.method, target.url, headers=req.headers, content=req.body, timeout=limit_ms / 1000
                )
                response = client.send(request, stream=True)
                status = response.status_code
                try:
                    chunks = []
                    for chunk in response.iter_raw():
                        received += len(chunk)
                        if received > cap:
                            raise EgressFailure(
                                "too-large",
                                f"response from {target.origin} is over the host's limit of {cap} bytes "
                                "(max_response_bytes); ask for less, e.g. with a Range header or paging",
                            )
                        chunks.append(chunk)
                finally:
                    response.close()
        except EgressFailure as e:
            done(status, e.kind)
            raise
        except (DeadlineExceeded, httpx.TimeoutException):
            done(status, "timeout")
            raise EgressFailure(
                "timeout", f"{req.method} {target.origin}: no complete response within {limit_ms:.0f} ms ({by_whom})"
            ) from None
        except Refused as e:
            done(None, "denied")
            raise EgressFailure("denied", f"{req.method} {target.origin}: {e}") from None
        except httpx.HTTPError as e:
            done(status, "unavailable")
            raise EgressFailure("unavailable", f"{req.method} {target.origin}: {_cause(e)}") from None
        done(status)
        headers = [(k.lower(), v) for k, v in response.headers.multi_items()]
        return Reply(response.status_code, headers, b"".join(chunks))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        for backend in self._backends.values():
            backend.close()


def _method(method: str) -> str:
    if not _TOKEN_RE.fullmatch(method or ""):
        raise EgressFailure("invalid", f"method {method!r} is not an HTTP method (e.g. GET, POST)")
    return method.upper()


def _headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, value in headers:
        if not _TOKEN_RE.fullmatch(name):
            raise EgressFailure("invalid", f"header name {name!r} is not a valid HTTP token")
        if any(c in value for c in "\r\n\x00"):
            raise EgressFailure("invalid", f"header '{name}' has a CR, LF or NUL in its value")
        if name.lower() in _MANAGED:
            raise EgressFailure(
                "invalid", f"header '{name}' is set by fnhost from the URL and body; drop it from the request"
            )
        if name.lower() == CHAIN_DEPTH_HEADER:
            raise EgressFailure(
                "invalid",
                f"header '{name}' is set by fnhost (the chain depth of what a function sends, {DOCS}); "
                "drop it from the request",
            )
        out.append((name, value))
    return out


def _follow(req: _Request, target: Target, status: int, location: str) -> _Request:
    """The next request of a redirect: 301/302/303 become GET without a body (HEAD stays HEAD),
    307/308 repeat the request; credentials are dropped when the origin changes."""
    try:
        url = str(target.url.join(location))
    except (httpx.InvalidURL, ValueError):
        raise EgressFailure("unavailable", f"{target.origin} redirects to an invalid URL: {location!r}") from None
    method, body, headers = req.method, req.body, list(req.headers)
    if status in (301, 302, 303) and method != "HEAD":
        method, body = "GET", b""
        headers = [(k, v) for k, v in headers if not k.lower().startswith("content-")]
    try:
        same_origin = parse_url(url).origin == target.origin
    except OriginError:
        same_origin = False
    if not same_origin:
        headers = [(k, v) for k, v in headers if k.lower() not in _CREDENTIALS]
    return _Request(method, url, headers, body)


def _redirected(message: str, hop: int) -> str:
    return message if hop == 0 else f"a redirect's {message}"


def _cause(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip(" )")
        return (
            f"TLS certificate verification failed ({detail}); fnhost only talks to servers whose certificate "
            "a trusted CA signed for that name (an operator can add a CA with ca_file)"
        )
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {text}"
    return f"{type(error).__name__}: {text}"
