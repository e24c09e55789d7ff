"""Bundle signing with Ed25519.

Keys:
- a private key is PKCS#8 PEM (unencrypted; protect the file: `save_signing_key` writes it 0600);
- a public key is written `ed25519:<base64 of the 32 raw bytes>` — short enough for a config file or
  an environment variable, and it is also the key's id.

The signature covers the bundle's normalized digest (`Bundle.sha256`), not the zip, so it survives
re-zipping. The signed message is `fnhost-bundle-signature-v1\\n` followed by the hex digest, so a
signature over a bundle can never be replayed as a signature over anything else.

`fnhost.sig`, in the bundle root, is UTF-8 JSON:

    {"key": "ed25519:<base64 public key>", "sig": "<base64 of the 64-byte signature>", "v": 1}
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import SignatureError
from ._files import write_secret_file
from .bundles import SIGNATURE_NAME, Bundle, bundle_digest

KEY_PREFIX = "ed25519:"
SIGNATURE_VERSION = 1
_MESSAGE_PREFIX = b"fnhost-bundle-signature-v1\n"
_SIGN_HINT = "sign it with `fnhost build --sign KEY`"


def generate_signing_key() -> tuple[bytes, str]:
    """A new key pair: (private key as PKCS#8 PEM, public key as `ed25519:<base64>`)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, _public_key_str(private.public_key())


def save_signing_key(path: str | Path, private_pem: bytes) -> Path:
    """Write a private key file with mode 0600; never overwrites an existing file."""
    return write_secret_file(path, private_pem)


def public_key_of(private_pem: bytes) -> str:
    """The `ed25519:<base64>` public key of a private key PEM."""
    return _public_key_str(_load_private_key(private_pem).public_key())


def parse_public_key(key: str) -> Ed25519PublicKey:
    """Parse `ed25519:<base64>`; raises ValueError naming the expected form (validate config with it)."""
    if not key.startswith(KEY_PREFIX):
        raise ValueError(f"public key {key!r} is not of the form {KEY_PREFIX}<base64 of 32 bytes>")
    try:
        raw = base64.b64decode(key[len(KEY_PREFIX) :], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"public key {key!r} is not of the form {KEY_PREFIX}<base64 of 32 bytes>")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_bundle(bundle_sha256: str, private_pem: bytes) -> bytes:
    """The content of `fnhost.sig` for a bundle with this normalized digest (`bundle_digest`)."""
    private = _load_private_key(private_pem)
    signature = private.sign(_signed_message(bundle_sha256))
    document = {
        "key": _public_key_str(private.public_key()),
        "sig": base64.b64encode(signature).decode("ascii"),
        "v": SIGNATURE_VERSION,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


def verify_bundle(bundle: Bundle, trusted_keys: list[str]) -> str:
    """Check the bundle's signature; return the trusted public key (`ed25519:...`) that made it.

    The digest is recomputed from the content, so a Bundle whose `sha256` field disagrees with it
    does not verify. Raises SignatureError if unsigned, tampered with or signed by an untrusted key,
    and ValueError if a trusted key is malformed (a configuration error).
    """
    trusted = {parse_public_key(k).public_bytes_raw() for k in trusted_keys}
    if bundle.signature is None:
        raise SignatureError(f"bundle is not signed; {_SIGN_HINT}")
    claimed_key, signature = _parse_signature_file(bundle.signature)
    message = _signed_message(bundle_digest(bundle.manifest_text, bundle.wasm))
    try:
        claimed_key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(
            "signature does not match the bundle contents (tampered or signed by another key); "
            f"rebuild the bundle and {_SIGN_HINT}"
        ) from None
    key_id = _public_key_str(claimed_key)
    if claimed_key.public_bytes_raw() not in trusted:
        raise SignatureError(
            f"signed by an untrusted key ({key_id}); add it to the trusted keys or sign with a trusted one"
        )
    return key_id


def _signed_message(bundle_sha256: str) -> bytes:
    digest = bundle_sha256.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"bundle_sha256 must be 64 hex digits, got {bundle_sha256!r}")
    return _MESSAGE_PREFIX + digest.encode("ascii")


def _parse_signature_file(data: bytes) -> tuple[Ed25519PublicKey, bytes]:
    def malformed(why: str) -> SignatureError:
        return SignatureError(f"{SIGNATURE_NAME} is malformed ({why}); rebuild the bundle and {_SIGN_HINT}")

    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise malformed(f"not UTF-8 JSON: {e}") from None
    if not isinstance(document, dict):
        raise malformed("not a JSON object")
    if document.get("v") != SIGNATURE_VERSION:
        raise malformed(f"unsupported version {document.get('v')!r}, expected {SIGNATURE_VERSION}")
    key_str = document.get("key")
    if not isinstance(key_str, str):
        raise malformed("`key` is missing")
    try:
        key = parse_public_key(key_str)
    except ValueError as e:
        raise malformed(str(e)) from None
    try:
        signature = base64.b64decode(document.get("sig", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        signature = b""
    if len(signature) != 64:
        raise malformed("`sig` is not the base64 of a 64-byte Ed25519 signature")
    return key, signature


def _load_private_key(private_pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"signing key is not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"signing key is a {type(key).__name__}, not Ed25519; create one with generate_signing_key"
        )
    return key


def _public_key_str(key: Ed25519PublicKey) -> str:
    return KEY_PREFIX + base64.b64encode(key.public_bytes_raw()).decode("ascii")
