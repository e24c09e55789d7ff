"""Origins: what `[grants] http` names and what a request's URL is checked against.

A grant is an origin — scheme (`http`/`https`), host, optional port — or `scheme://*.suffix[:port]`
for every subdomain of `suffix` (not `suffix` itself). Nothing else: no path, query, fragment or
userinfo, so one grant always means one set of servers.

Hosts are compared in one canonical form, the same one httpx sends: lower case, IDNA (`xn--`) for
non-ASCII names, one trailing dot dropped, IPv6 without brackets. An IPv4 address must be written
as a dotted quad: other spellings that resolvers still accept (`2130706433`, `0x7f.1`, `0177.0.0.1`,
`127.1`) are refused with the canonical form to write instead, so a look-alike never slips past a
grant or a rule. A URL is parsed by httpx (`httpx.URL`), the parser the request is sent with.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

SCHEMES = {"http": 80, "https": 443}
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMERIC_RE = re.compile(r"[0-9a-fx.]+")


class OriginError(ValueError):
    """A grant or a URL that cannot name an origin; the message says why and what to write."""

    kind = "invalid"


class UserinfoRefused(OriginError):
    """A URL with `user:password@`: refused outright (credentials go in headers, not URLs)."""

    kind = "denied"


@dataclass(frozen=True)
class Target:
    """Where one request goes: its URL's origin, canonical."""

    scheme: str
    host: str  # canonical (module docstring)
    port: int
    url: httpx.URL

    @property
    def origin(self) -> str:
        return origin_text(self.scheme, self.host, self.port)


@dataclass(frozen=True)
class OriginGrant:
    """One entry of `[grants] http`."""

    scheme: str
    host: str  # canonical; for a wildcard, the suffix after `*.`
    port: int
    wildcard: bool

    @property
    def text(self) -> str:
        """The canonical spelling (metrics labels, messages, `--may-grant` matching)."""
        return origin_text(self.scheme, f"*.{self.host}" if self.wildcard else self.host, self.port)

    @property
    def literal(self) -> bool:
        """Whether it names one host literally (then that host may be a private address)."""
        return not self.wildcard

    def matches(self, target: Target) -> bool:
        if target.scheme != self.scheme or target.port != self.port:
            return False
        if self.wildcard:
            return target.host.endswith("." + self.host)
        return target.host == self.host


def origin_text(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if SCHEMES[scheme] == port else f"{scheme}://{shown}:{port}"


def parse_grant(text: str) -> OriginGrant:
    """`https://api.example.com`, `https://*.example.org`, `http://127.0.0.1:8081` → an `OriginGrant`."""
    if not isinstance(text, str):
        raise OriginError(f"must be an origin string such as 'https://api.example.com', got {text!r}")
    wildcard = "://*." in text
    url = _url(text.replace("://*.", "://", 1) if wildcard else text, what="origin")
    if url.raw_path not in (b"", b"/") or url.query or url.fragment or text.rstrip().endswith(("?", "#")):
        raise OriginError(
            f"{text!r} has a path, query or fragment; a grant is an origin only "
            f"(scheme://host[:port]), e.g. '{_origin_of(url)}'"
        )
    if text.endswith("/"):
        raise OriginError(f"{text!r} ends with '/'; write the origin without it: '{text.rstrip('/')}'")
    scheme, host, port = _parts(url, text)
    if (wildcard and ":" in host) or (wildcard and _is_ip(host)):
        raise OriginError(f"{text!r}: '*.' applies to DNS names, not IP addresses")
    if wildcard and "." not in host:
        raise OriginError(
            f"{text!r}: '*.{host}' would match every name under a top-level domain; name a registered "
            "domain, e.g. 'https://*.example.org'"
        )
    return OriginGrant(scheme, host, port, wildcard)


def parse_url(text: str) -> Target:
    """A request URL → its `Target`; `OriginError` for anything that is not a plain http(s) URL."""
    url = _url(text, what="URL")
    scheme, host, port = _parts(url, text)
    return Target(scheme, host, port, url)


def _url(text: str, *, what: str) -> httpx.URL:
    if any(c in text for c in "\r\n\t\x00 ") or not text.isprintable():
        raise OriginError(f"{what} {text!r} contains whitespace or control characters")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as e:
        host = urlsplit(text).hostname or ""
        canonical = _canonical_ipv4(host) if _NUMERIC_RE.fullmatch(host) else None
        if canonical is not None and canonical != host:
            raise OriginError(_odd_ip(text, host, canonical)) from None
        raise OriginError(f"{what} {text!r} is not a valid URL: {e}") from None
    if url.scheme not in SCHEMES:
        raise OriginError(f"{what} {text!r}: the scheme must be http or https, got '{url.scheme or '(none)'}'")
    if url.userinfo or "@" in text.split("//", 1)[-1].split("/", 1)[0]:
        raise UserinfoRefused(
            f"{what} {text!r} has userinfo (user:password@); credentials never go in a URL: "
            "send them in a header, e.g. Authorization"
        )
    return url


def _origin_of(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _parts(url: httpx.URL, text: str) -> tuple[str, str, int]:
    host = url.raw_host.decode("ascii").lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if not host:
        raise OriginError(f"{text!r} has no host")
    port = url.port if url.port is not None else SCHEMES[url.scheme]
    if not 1 <= port <= 65535:
        raise OriginError(f"{text!r}: port {port} is not 1..65535")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise OriginError(f"{text!r}: '{host}' is not an IPv6 address") from None
        return url.scheme, str(ipaddress.IPv6Address(host)), port
    if _NUMERIC_RE.fullmatch(host):
        canonical = _canonical_ipv4(host)
        if canonical is not None and canonical != host:
            raise OriginError(_odd_ip(text, host, canonical))
    if not _is_ip(host) and not all(_LABEL_RE.fullmatch(label) for label in host.split(".")):
        raise OriginError(f"{text!r}: '{host}' is not a valid host name")
    return url.scheme, host, port


def _odd_ip(text: str, host: str, canonical: str) -> str:
    return (
        f"{text!r}: '{host}' is an IPv4 address in a non-standard spelling (resolvers read it as "
        f"{canonical}); write it as {canonical}"
    )


def _canonical_ipv4(host: str) -> str | None:
    """The dotted quad `host` means to a resolver (inet_aton's reading), or None if it is no address."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
