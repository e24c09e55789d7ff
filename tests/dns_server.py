"""A real DNS server (UDP, RFC 1035 wire format) whose answers a test decides per query, for the
DNS-rebinding tests: `answer(name, qtype, n)` gives the addresses for the n-th query of that type
(TTL 0, so nothing caches them). Every query is recorded in `queries`.

It binds port 53 (a resolver has no other) on a loopback address of its own, so it needs root; a
process reaches it through a resolv.conf naming that address (see test_egress_rebinding.py).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Callable

A, AAAA = 1, 28


def _name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            return ".".join(labels).lower(), offset
        labels.append(packet[offset : offset + length].decode("ascii"))
        offset += length


class DnsServer:
    def __init__(self, address: str, answer: Callable[[str, int, int], list[str]]) -> None:
        self.address = address
        self.answer = answer
        self.queries: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def count(self, qtype: int) -> int:
        with self._lock:
            return sum(1 for _, t in self.queries if t == qtype)

    def _serve(self) -> None:
        while not self._stop:
            try:
                packet, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._reply(packet)
            except (IndexError, UnicodeDecodeError, struct.error):
                continue  # not a query this server understands: no answer (the resolver retries or fails)
            self.sock.sendto(reply, peer)

    def _reply(self, packet: bytes) -> bytes:
        ident, _flags, qdcount = struct.unpack("!HHH", packet[:6])
        name, end = _name(packet, 12)
        qtype, _qclass = struct.unpack("!HH", packet[end : end + 4])
        question = packet[12 : end + 4]
        with self._lock:
            n = sum(1 for _, t in self.queries if t == qtype)
            self.queries.append((name, qtype))
        addresses = self.answer(name, qtype, n) if qtype in (A, AAAA) else []
        records = b""
        for text in addresses:
            ip = ipaddress.ip_address(text)
            rtype = A if ip.version == 4 else AAAA
            if rtype != qtype:
                continue
            # a pointer to the question's name, type, class IN, TTL 0, the address
            records += struct.pack("!HHHIH", 0xC00C, rtype, 1, 0, len(ip.packed)) + ip.packed
        count = records.count(b"\xc0\x0c")  # one pointer per record (addresses never hold 0xc00c here)
        flags = 0x8400 | 0x0100  # a response, authoritative, recursion desired echoed; NOERROR
        return struct.pack("!HHHHHH", ident, flags, min(qdcount, 1), count, 0, 0) + question + records

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.thread.join(timeout=2)
