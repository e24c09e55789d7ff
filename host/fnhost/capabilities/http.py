"""Outbound HTTP to the origins a manifest grants (`[grants] http = ["https://api.example.com"]`).

Grants are origins, not namespaced resources: `https://api.example.com` is the same server from
every namespace, so nothing is shared or qualified (`namespaced = False`). Who may grant one is
decided at deploy like any grant (`fnhost.control.grants`): an admin of the namespace, or a key
with a matching `--may-grant 'http:https://*.example.org'` pattern.

Per call: the origin of the URL — and of every redirect hop — must match a grant (under
`--egress allowlist`; `public` also lets through any origin on a public address; `off` refuses
all), the resolved address must pass the SSRF rules (`fnhost.egress.addresses`), and the request
counts against the invocation's host-call budget (its bytes too) and the host's per-invocation
request cap. Every hop is recorded in `CallState.outbound` (the invocation record and /metrics), and
carries `fnhost-chain-depth: N + 1` for an invocation at chain depth N (`fnhost.chains`): a function
URL it reaches runs at that depth, so a function calling itself stops at the limit.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from wasmtime.component import Record

from ..chains import CHAIN_DEPTH_HEADER
from ..egress import Egress, EgressFailure, EgressMode, Hop, OriginError, OriginGrant, Target, parse_grant
from ..errors import ManifestError
from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import U16, U32, ByteText, bytes_as_text, bytes_of_text, operation, text_size
from .state import CallState

HTTP = "http"
_PATTERN_RE = re.compile(r"(https?|\*)://[a-z0-9.*?\[\]:-]{1,300}")


@dataclass(frozen=True, eq=False)
class OutboundResponse(Record):
    """The WIT `outbound-http.outbound-response` (a `Record`: the component binding lowers it as one)."""

    status: U16
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, eq=False)
class OutboundTextResponse(Record):
    """The WIT `outbound-http.outbound-text-response`: the body as text in `body_encoding`."""

    status: U16
    headers: list[tuple[str, str]]
    body: str
    body_encoding: ByteText


@functools.lru_cache(maxsize=4096)
def _grant(text: str) -> OriginGrant:
    return parse_grant(text)


class HttpCapability(Capability):
    interface = "outbound-http"
    grant_key = "http"
    kind = HTTP
    noun = "origin"
    namespaced = False
    written_when_empty = False

    def __init__(self, egress: Egress) -> None:
        self.egress = egress

    @classmethod
    def validate_grant(cls, raw: object) -> tuple[str, ...]:
        """Each origin checked and written canonically (`HTTPS://API.example.com:443` → `https://api.example.com`)."""
        if not isinstance(raw, list):
            raise ManifestError(
                f"grants.http: must be a list of origins such as 'https://api.example.com', got {raw!r}"
            )
        out = []
        for item in raw:
            try:
                out.append(parse_grant(item).text)
            except OriginError as e:
                raise ManifestError(f"grants.http: {e}") from None
        return tuple(dict.fromkeys(out))

    @classmethod
    def store_name_of(cls, namespace: str, reference: str) -> str:
        return reference

    @classmethod
    def is_grant_pattern(cls, glob: str) -> bool:
        return bool(_PATTERN_RE.fullmatch(glob))

    grant_pattern_example = "'http:https://api.example.com', 'http:https://*.example.org'"

    def close(self) -> None:
        self.egress.close()

    @operation(since="0.2.0")
    def request(
        self,
        state: CallState,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_ms: U32 | None,
    ) -> OutboundResponse:
        state.charge(len(method) + len(url) + sum(len(k) + len(v) for k, v in headers) + len(body))
        grants = [_grant(g) for g in state.grants.of_kind(HTTP)]
        mode = self.egress.config.mode

        def authorize(target: Target, via: str | None) -> Hop:
            if mode is EgressMode.OFF:
                raise self._denied(
                    state,
                    "outbound HTTP is off on this host (fnhost serve --egress off); an operator can allow it "
                    "with --egress allowlist",
                )
            matches = sorted((g for g in grants if g.matches(target)), key=lambda g: not g.literal)
            if matches:
                return Hop(matches[0].text, matches[0].literal)
            if mode is EgressMode.PUBLIC:
                return Hop(None, False)
            redirect = f" (a redirect from {via})" if via else ""
            raise state.deny(f"origin '{target.origin}'{redirect} under [grants] http")

        try:
            reply = self.egress.request(
                method,
                url,
                headers,
                body,
                timeout_ms=timeout_ms,
                deadline=state.deadline,
                authorize=authorize,
                log=state.outbound,
                host_headers=[(CHAIN_DEPTH_HEADER, str(state.chain_depth + 1))],
            )
        except EgressFailure as e:
            if e.kind == "denied":
                raise self._denied(state, e.message) from None
            raise HostCallError(ErrorKind.of_case(e.kind), e.message) from None
        if len(reply.body) > state.bytes_left:
            raise HostCallError(
                ErrorKind.LIMIT_EXCEEDED,
                f"a response of {len(reply.body)} bytes is over what is left of the host-call byte budget "
                f"({state.bytes_left} bytes, limits.max_host_bytes)",
            )
        state.bytes_left -= len(reply.body)
        return OutboundResponse(reply.status, reply.headers, reply.body)

    @operation(since="0.2.0")
    def request_text(
        self,
        state: CallState,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: str,
        body_encoding: ByteText,
        timeout_ms: U32 | None,
    ) -> OutboundTextResponse:
        """`request` with both bodies as text: a string crosses a component's boundary in bulk, a
        list<u8> one value per byte. The response's encoding is the host's choice: latin-1 when the
        body is ASCII (a copy for the guest), else base64."""
        # before decoding: an oversized body costs no copy (base64 may be up to 2 bytes shorter)
        at_least = text_size(body, body_encoding) - (2 if body_encoding == "base64" else 0)
        if at_least > state.bytes_left:  # the checks `request` makes, in its order
            raise HostCallError(
                ErrorKind.LIMIT_EXCEEDED,
                f"a request body of at least {at_least} bytes is over what is left of the host-call byte budget "
                f"({state.bytes_left} bytes, limits.max_host_bytes)",
            )
        limit = self.egress.config.max_request_bytes
        if at_least > limit:
            raise HostCallError(
                ErrorKind.TOO_LARGE,
                f"request body of at least {at_least} bytes is over the host's limit of {limit} bytes",
            )
        data = bytes_of_text(body, body_encoding, "request body")
        reply = self.request(state, method, url, headers, data, timeout_ms)
        encoding: ByteText = "latin1" if reply.body.isascii() else "base64"
        return OutboundTextResponse(reply.status, reply.headers, bytes_as_text(reply.body, encoding), encoding)

    @staticmethod
    def _denied(state: CallState, message: str) -> HostCallError:
        state.denied.append(message)
        return HostCallError(ErrorKind.DENIED, message)
