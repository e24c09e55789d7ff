"""Which IP addresses a function may connect to: the SSRF rules on the resolved address.

`refusal(address, literal)` is the one check; it runs on every address a name resolves to, right
before the host connects to that same address (`transport.PinnedBackend`), so what is checked is
what is reached — a name that resolves to a public address now and to 127.0.0.1 a second later
(DNS rebinding) never gets its second answer asked for.

- **Always refused** — cloud metadata endpoints (169.254.169.254, fd00:ec2::254 and the other
  providers' in `METADATA`), the unspecified address (0.0.0.0 and ::, which reach this machine)
  and multicast: no grant makes them reachable.
- **Refused unless the grant names the host literally** (`https://10.0.0.5`,
  `http://db.internal:5432`, not `https://*.internal`) — loopback, private (RFC 1918, fc00::/7),
  link-local, CGNAT (100.64.0.0/10) and every other address that is not globally routable
  (documentation, benchmarking, reserved ranges).
- An IPv4 address inside IPv6 — IPv4-mapped (`::ffff:127.0.0.1`), IPv4-compatible, NAT64
  (64:ff9b::/96), 6to4 (2002::/16) — is judged as the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean... instance metadata
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "100.100.100.200",  # Alibaba Cloud metadata
    )
)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), else `address`."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # NAT64, IPv4-compatible
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, literal: bool) -> str | None:
    """Why a function may not connect to `address` (e.g. "a loopback address"), or None if it may.
    `literal`: the matching grant names this host literally."""
    inner = embedded_ipv4(address)
    for a in dict.fromkeys((inner, address)):
        if a in METADATA:
            return "a cloud metadata address"
        if a.is_unspecified:
            return "the unspecified address (it reaches this machine)"
        if a.is_multicast:
            return "a multicast address"
    if literal:
        return None
    for a in dict.fromkeys((inner, address)):
        if a.is_loopback:
            return "a loopback address"
        if a.is_link_local:
            return "a link-local address"
        if isinstance(a, ipaddress.IPv4Address) and a in _CGNAT:
            return "a carrier-grade NAT (100.64.0.0/10) address"
        if a.is_private:
            return "a private address"
        if not a.is_global:
            return "an address that is not publicly routable"
    return None
