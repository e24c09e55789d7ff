"""Real HTTP(S) servers on 127.0.0.1 for the outbound-HTTP tests, and a throwaway CA to sign for them.

Paths: `/echo` (the request as JSON), `/raw` (the request body as is), `/bytes?n=N` (N bytes), `/trickle` (a byte every 0.1 s,
never done), `/sleep?s=S` (headers after S seconds), `/redirect?to=URL[&status=302]`,
`/loop` (redirects to itself), `/status?code=N`.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))  # type: ignore[attr-defined]
        if url.path == "/echo":
            out = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode(),
            }
            self._reply(200, json.dumps(out).encode(), {"content-type": "application/json", "x-echo": "1"})
        elif url.path == "/raw":
            self._reply(200, body, {"content-type": "application/octet-stream"})
        elif url.path == "/bytes":
            self._reply(200, b"x" * int(q["n"]))
        elif url.path == "/trickle":
            self.send_response(200)
            self.send_header("content-length", "1000000")
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
        elif url.path == "/sleep":
            time.sleep(float(q["s"]))
            self._reply(200, b"late")
        elif url.path == "/redirect":
            self._reply(int(q.get("status", "302")), b"", {"location": q["to"]})
        elif url.path == "/loop":
            self._reply(302, b"", {"location": "/loop"})
        elif url.path == "/status":
            self._reply(int(q["code"]), b"status")
        else:
            self._reply(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class Server:
    """A threading HTTP server on 127.0.0.1 (HTTPS with `tls`), stopped by `close`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.seen = []  # type: ignore[attr-defined]
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str]]]:
        return self.httpd.seen  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def tls_files(directory: Path, *, sign_with_ca: bool) -> tuple[ssl.SSLContext, Path]:
    """A server context for a certificate for 127.0.0.1, and the CA file that trusts it: signed by a
    fresh CA (`sign_with_ca`), or self-signed (then the "CA file" is the certificate itself)."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1()) if sign_with_ca else key
    issuer = _name("fnhost test CA") if sign_with_ca else _name("127.0.0.1")
    ca_cert = None
    if sign_with_ca:
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(issuer)
            .issuer_name(issuer)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    cert_file, key_file, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert_file.write_bytes(pem(cert))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ca_file.write_bytes(pem(ca_cert) if ca_cert is not None else pem(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file
