"""Secrets encrypted at rest (the store behind the `secrets` capability).

Each value is sealed with AES-256-GCM under the host's master key, with a fresh random 96-bit nonce
per write and the secret's name as associated data, so a ciphertext copied under another name
does not decrypt. Next to each ciphertext sits a fingerprint of the key that wrote it (an HMAC of a
constant, which reveals nothing about the key), so a failure can say whether the master key changed
or the row was tampered with. Plaintext never reaches the database, an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._common import SQLiteStore, require_resource_name, sql_migration, translate_database_errors, utf8_within
from .database import AnyDatabase
from .errors import MasterKeyError, SecretUndecryptable

MASTER_KEY_ENV = "FNHOST_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
MASTER_KEY_BYTES = 32
GENERATE_KEY_COMMAND = 'python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"'
NONCE_BYTES = 12

MIGRATIONS = [
    sql_migration(
        "CREATE TABLE secrets ("
        " name TEXT PRIMARY KEY,"
        " nonce BLOB NOT NULL,"
        " ciphertext BLOB NOT NULL,"
        " key_fingerprint TEXT NOT NULL,"
        " updated_at REAL NOT NULL"
        ")"
    ),
    # One fingerprint per database: a host (or node) with another master key refuses to start, instead of
    # failing on each secret later. An existing database takes the fingerprint its secrets were written with.
    sql_migration(
        "CREATE TABLE master_key_check (id INTEGER PRIMARY KEY CHECK (id = 1), key_fingerprint TEXT NOT NULL)",
        "INSERT INTO master_key_check (id, key_fingerprint) SELECT 1, key_fingerprint FROM secrets"
        " ORDER BY updated_at DESC LIMIT 1",
    ),
]


class SecretStore(Protocol):
    def set(self, name: str, value: str) -> None:
        """Create or replace secret `name`."""
        ...

    def get(self, name: str) -> str | None:
        """The value of `name`, or None if it is not set."""
        ...

    def delete(self, name: str) -> bool:
        """Remove `name`; False if it was not set."""
        ...

    def names(self) -> list[str]:
        """The names of every secret, sorted. Values are never listed."""
        ...


class SQLiteSecretStore(SQLiteStore):
    """`SecretStore` over the host database.

    Raises `InvalidArgument`, `TooLarge`, `StoreUnavailable`, and `SecretUndecryptable` when a
    stored value does not decrypt.
    """

    def __init__(self, db: AnyDatabase, master_key: bytes, max_value_bytes: int = 64 * 1024) -> None:
        if not isinstance(master_key, bytes) or len(master_key) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"the master key must be {MASTER_KEY_BYTES} bytes (see load_master_key)")
        super().__init__(db, "secrets", MIGRATIONS)
        self._aead = AESGCM(master_key)
        self._fingerprint = key_fingerprint(master_key)
        self.max_value_bytes = max_value_bytes
        self._check_master_key()

    @translate_database_errors
    def _check_master_key(self) -> None:
        """The first key to use a database is its key; any other is refused (`MasterKeyError`)."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO master_key_check (id, key_fingerprint) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                [self._fingerprint],
            )
            stored = db.execute("SELECT key_fingerprint FROM master_key_check WHERE id = 1").fetchone()[0]
        if stored != self._fingerprint:
            raise MasterKeyError(
                f"this host's master key (fingerprint {self._fingerprint}) is not the key the database's secrets "
                f"are sealed with (fingerprint {stored}): every host and node on one database must share "
                f"{MASTER_KEY_ENV} (or the data dir's {MASTER_KEY_FILE}); set it to that key"
            )

    @translate_database_errors
    def set(self, name: str, value: str) -> None:
        require_resource_name("secret", name)
        plaintext = utf8_within(f"secret {name!r} value", value, self.max_value_bytes, allow_empty=True)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext, _associated_data(name))
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO secrets (name, nonce, ciphertext, key_fingerprint, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, "
                "ciphertext = excluded.ciphertext, key_fingerprint = excluded.key_fingerprint, "
                "updated_at = excluded.updated_at",
                [name, nonce, ciphertext, self._fingerprint, time.time()],
            )

    @translate_database_errors
    def get(self, name: str) -> str | None:
        require_resource_name("secret", name)
        row = self._db.db.execute(
            "SELECT nonce, ciphertext, key_fingerprint FROM secrets WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            return None
        nonce, ciphertext, fingerprint = row
        try:
            plaintext = self._aead.decrypt(bytes(nonce), bytes(ciphertext), _associated_data(name))
        except InvalidTag:
            if fingerprint != self._fingerprint:
                reason = "the master key differs from the one it was written with"
            else:
                reason = "its stored ciphertext was altered or copied from another secret"
            raise SecretUndecryptable(
                f"secret {name!r} cannot be decrypted: {reason}; set it again to replace it"
            ) from None
        return plaintext.decode("utf-8")

    @translate_database_errors
    def delete(self, name: str) -> bool:
        require_resource_name("secret", name)
        with self._db.transaction() as db:
            return bool(db.execute("DELETE FROM secrets WHERE name = ?", [name]).rowcount > 0)

    @translate_database_errors
    def names(self) -> list[str]:
        return [row[0] for row in self._db.db.execute("SELECT name FROM secrets ORDER BY name")]


def _associated_data(name: str) -> bytes:
    return f"fnhost-secret:{name}".encode()


def key_fingerprint(master_key: bytes) -> str:
    """A short, non-secret identifier of a master key (16 hex characters)."""
    return hmac.new(master_key, b"fnhost master key fingerprint", hashlib.sha256).hexdigest()[:16]


def load_master_key(data_dir: Path) -> bytes:
    """The master key: from `FNHOST_MASTER_KEY` if set, else `data_dir/master.key`, created on first use.

    Both hold the base64 of 32 bytes. The file is created with mode 0600 from its first byte: the
    key is written to a temporary file opened with O_CREAT|O_EXCL and mode 0o600, then hard-linked
    into place, which fails if another process got there first; that process's key is then used.
    So a reader never sees a half-written key file and two processes never end up with two keys.
    """
    from_env = os.environ.get(MASTER_KEY_ENV)
    if from_env is not None:
        return _decode_key(from_env, f"the environment variable {MASTER_KEY_ENV}")
    path = Path(data_dir) / MASTER_KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return _decode_key(path.read_text(encoding="ascii", errors="replace"), f"the key file {path}")


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
        problem = f"it decodes to {len(key)} bytes"
    except (binascii.Error, ValueError):
        key, problem = b"", "it is not valid base64"
    if len(key) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"{source} must hold the base64 encoding of exactly {MASTER_KEY_BYTES} random bytes, "
            f"but {problem}; generate a key with: {GENERATE_KEY_COMMAND}"
        )
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.b64encode(os.urandom(MASTER_KEY_BYTES)) + b"\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, encoded)
            os.fsync(fd)
        finally:
            os.close(fd)
        # If another process linked its key first, this fails and everyone uses that key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
