"""The control plane: hostile bundles, signing, API keys and the audit chain."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import stat
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path

import pytest

from fnhost.control.audit import AuditLog, VerifyResult
from fnhost.control.auth import ApiKeys
from fnhost.control.bundles import BundleLimits, bundle_digest, open_bundle, pack_bundle
from fnhost.control.signing import (
    generate_signing_key,
    parse_public_key,
    public_key_of,
    save_signing_key,
    sign_bundle,
    verify_bundle,
)
from fnhost.errors import BundleError, BundleTooLarge, Conflict, Forbidden, NotFound, SignatureError, Unauthorized
from fnhost.stores import audit as audit_module
from fnhost.stores.database import Database

WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) * 4
MANIFEST = 'name = "hello"\n\n[limits]\nmemory_mb = 64\n'


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip exactly as given: duplicates, odd names and attributes included."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        with zipfile.ZipFile(out, "w", compression=method) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return out.getvalue()


def good_entries() -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    return [("fnhost.toml", MANIFEST.encode()), ("function.wasm", WASM)]


def patch_headers(data: bytes, name: str, *, file_size: int | None = None, flags: int | None = None) -> bytes:
    """Rewrite an entry's declared uncompressed size and/or flag bits in both of its headers."""
    buf = bytearray(data)
    encoded = name.encode()
    for signature, name_at, flags_at, size_at in ((b"PK\x03\x04", 30, 6, 22), (b"PK\x01\x02", 46, 8, 24)):
        at = buf.find(signature)
        while at >= 0:
            if buf[at + name_at : at + name_at + len(encoded)] == encoded:
                if file_size is not None:
                    struct.pack_into("<L", buf, at + size_at, file_size)
                if flags is not None:
                    struct.pack_into("<H", buf, at + flags_at, flags)
            at = buf.find(signature, at + 4)
    return bytes(buf)


def rejects(data: bytes, match: str, *, kind: type[Exception] = BundleError, **limits: int) -> None:
    with pytest.raises(kind, match=match):
        open_bundle(data, limits=BundleLimits(**limits))


# --- bundles: the good path ---------------------------------------------------------------------


def test_open_packed_bundle() -> None:
    bundle = open_bundle(pack_bundle(MANIFEST, WASM))
    assert bundle.manifest.name == "hello"
    assert bundle.manifest.limits.memory_mb == 64
    assert bundle.manifest_text == MANIFEST
    assert bundle.wasm == WASM
    assert bundle.signature is None
    assert bundle.sha256 == bundle_digest(MANIFEST, WASM)


def test_pack_is_deterministic_and_digest_ignores_zip_layout() -> None:
    first = pack_bundle(MANIFEST, WASM)
    assert pack_bundle(MANIFEST, WASM) == first
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert zf.namelist() == sorted(zf.namelist())
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # The same content zipped another way (stored, other order, other timestamps, extra files).
    rezipped = make_zip(
        [("README.md", b"hi"), ("function.wasm", WASM), ("docs/", b""), ("fnhost.toml", MANIFEST.encode())],
        method=zipfile.ZIP_STORED,
    )
    assert rezipped != first
    assert open_bundle(rezipped).sha256 == open_bundle(first).sha256
    # ...and different content gives a different digest.
    assert bundle_digest(MANIFEST, WASM + b"\0") != bundle_digest(MANIFEST, WASM)
    assert bundle_digest(MANIFEST + " ", WASM) != bundle_digest(MANIFEST, WASM)


def test_module_in_a_subdirectory() -> None:
    manifest = 'name = "hello"\nmodule = "build/out.wasm"\n'
    bundle = open_bundle(
        make_zip([("fnhost.toml", manifest.encode()), ("build/", b""), ("build/out.wasm", WASM)])
    )
    assert bundle.wasm == WASM


def test_pack_refuses_what_open_would_reject() -> None:
    with pytest.raises(BundleError, match="not a WebAssembly binary"):
        pack_bundle(MANIFEST, b"ELF...")
    with pytest.raises(BundleError, match="name:"):
        pack_bundle('name = "Bad Name"\n', WASM)


# --- bundles: hostile and broken uploads ---------------------------------------------------------


def test_rejects_oversize_upload() -> None:
    data = pack_bundle(MANIFEST, WASM)
    rejects(data, "upload limit", kind=BundleTooLarge, max_upload_bytes=len(data) - 1)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 100])
def test_rejects_non_zip(data: bytes) -> None:
    rejects(data, "not a valid zip")


def test_rejects_zip_bomb_by_ratio() -> None:
    bomb = make_zip([*good_entries(), ("padding.bin", b"\0" * (20 * 1024 * 1024))])
    assert len(bomb) < 100 * 1024
    rejects(bomb, "ratio over 200:1", kind=BundleTooLarge)


def test_rejects_zip_bomb_by_total_declared_size() -> None:
    parts = [(f"part{i}.bin", os.urandom(300 * 1024)) for i in range(4)]
    data = make_zip([*good_entries(), *parts])
    rejects(data, "in total", kind=BundleTooLarge, max_uncompressed_bytes=1024 * 1024)
    rejects(data, "declares .* over the", kind=BundleTooLarge, max_uncompressed_bytes=200 * 1024)


def test_rejects_lying_header_smaller_than_the_data() -> None:
    # The module really inflates to 16 MiB but both headers claim 4 KiB: passes every declared check.
    wasm = WASM + b"\0" * (16 * 1024 * 1024)
    data = patch_headers(
        make_zip([("fnhost.toml", MANIFEST.encode()), ("function.wasm", wasm)]),
        "function.wasm",
        file_size=4096,
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.getinfo("function.wasm").file_size == 4096
    rejects(data, "function.wasm.*corrupt")


def test_rejects_lying_header_larger_than_the_data() -> None:
    data = patch_headers(make_zip(good_entries()), "function.wasm", file_size=len(WASM) + 1000)
    rejects(data, "function.wasm")


def test_actual_decompressed_size_is_capped_by_limits() -> None:
    # A truthful header over the limit is refused before any decompression...
    rejects(make_zip(good_entries()), "over the", kind=BundleTooLarge, max_uncompressed_bytes=len(WASM) - 1)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:/evil.wasm", "absolute path"),
        ("../evil.wasm", r"contains '\.\.'"),
        ("a/../../evil.wasm", r"contains '\.\.'"),
        ("dir\\evil.wasm", "backslash"),
        ("./fnhost.toml", "'.' path component"),
        ("a//b", "empty or '.' path component"),
        ("evil\x01.wasm", "control characters"),
    ],
)
def test_rejects_hostile_names(name: str, match: str) -> None:
    rejects(make_zip([*good_entries(), (name, b"x")]), match)


def test_rejects_symlink() -> None:
    link = zipfile.ZipInfo("function.wasm")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    rejects(make_zip([("fnhost.toml", MANIFEST.encode()), (link, b"/etc/passwd")]), "is a symlink")


def test_rejects_duplicate_names() -> None:
    rejects(
        make_zip([*good_entries(), ("function.wasm", b"\0asm other")]), "two entries named 'function.wasm'"
    )
    rejects(make_zip([*good_entries(), ("FNHOST.toml", b"")]), "differ only in case")


def test_rejects_encrypted_entry() -> None:
    data = patch_headers(make_zip(good_entries()), "function.wasm", flags=0x1)
    rejects(data, "encrypted")


def test_rejects_unusual_compression() -> None:
    rejects(make_zip(good_entries(), method=zipfile.ZIP_BZIP2), "only stored and deflate")


def test_rejects_too_many_entries() -> None:
    many = [(f"f{i}.txt", b"") for i in range(20)]
    rejects(make_zip([*good_entries(), *many]), "entries", max_entries=10)


def test_rejects_missing_manifest() -> None:
    rejects(make_zip([("function.wasm", WASM)]), "bundle has no fnhost.toml at its root")
    rejects(make_zip([("sub/fnhost.toml", MANIFEST.encode()), ("function.wasm", WASM)]), "no fnhost.toml")


def test_rejects_invalid_manifest() -> None:
    rejects(make_zip([("fnhost.toml", b"name = \n"), ("function.wasm", WASM)]), "not valid TOML")
    rejects(make_zip([("fnhost.toml", b'name = "X"\n'), ("function.wasm", WASM)]), "fnhost.toml: name:")
    rejects(make_zip([("fnhost.toml", b"name = '\xff'\n"), ("function.wasm", WASM)]), "not UTF-8")


def test_rejects_missing_module() -> None:
    rejects(
        make_zip([("fnhost.toml", b'name = "hello"\nmodule = "out.wasm"\n'), ("function.wasm", WASM)]),
        "no out.wasm, the module fnhost.toml names",
    )


def test_rejects_non_wasm_module() -> None:
    rejects(
        make_zip([("fnhost.toml", MANIFEST.encode()), ("function.wasm", b"#!/bin/sh\n")]),
        r"not a WebAssembly binary .*\\0asm",
    )


def test_corrupted_bundles_raise_only_bundle_errors() -> None:
    """Random byte flips and truncations of valid bundles: a Bundle or a BundleError, nothing else."""
    rng = random.Random(0)
    originals = [
        pack_bundle(MANIFEST, WASM, signature=b"{}"),
        make_zip(good_entries(), method=zipfile.ZIP_STORED),
    ]
    for _ in range(3000):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.1:
            data = data[: rng.randrange(len(data))]
        with contextlib.suppress(BundleError):
            open_bundle(bytes(data))


# --- signing -----------------------------------------------------------------------------------


def signed(manifest: str = MANIFEST, wasm: bytes = WASM) -> tuple[bytes, str, bytes]:
    pem, public = generate_signing_key()
    return pack_bundle(manifest, wasm, signature=sign_bundle(bundle_digest(manifest, wasm), pem)), public, pem


def test_sign_and_verify_round_trip() -> None:
    data, public, pem = signed()
    assert public.startswith("ed25519:") and public_key_of(pem) == public
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    bundle = open_bundle(data)
    document = json.loads(bundle.signature or b"")
    assert document["key"] == public and document["v"] == 1
    assert verify_bundle(bundle, [generate_signing_key()[1], public]) == public


def test_signature_survives_rezipping() -> None:
    data, public, _ = signed()
    sig = open_bundle(data).signature or b""
    rezipped = make_zip(
        [("function.wasm", WASM), ("fnhost.toml", MANIFEST.encode()), ("fnhost.sig", sig)],
        method=zipfile.ZIP_STORED,
    )
    assert verify_bundle(open_bundle(rezipped), [public]) == public


def test_tampered_bundle_fails() -> None:
    data, public, _ = signed()
    sig = open_bundle(data).signature
    tampered = open_bundle(pack_bundle(MANIFEST, WASM + b"\x01", signature=sig))
    with pytest.raises(SignatureError, match="does not match the bundle contents"):
        verify_bundle(tampered, [public])
    # Claiming another (trusted) key for the same signature does not help.
    other = generate_signing_key()[1]
    forged = json.dumps({"key": other, "sig": json.loads(sig or b"")["sig"], "v": 1}).encode()
    with pytest.raises(SignatureError, match="does not match"):
        verify_bundle(open_bundle(pack_bundle(MANIFEST, WASM, signature=forged)), [public, other])


def test_untrusted_key_fails() -> None:
    data, _, _ = signed()
    with pytest.raises(SignatureError, match="signed by an untrusted key"):
        verify_bundle(open_bundle(data), [generate_signing_key()[1]])
    with pytest.raises(SignatureError, match="untrusted"):
        verify_bundle(open_bundle(data), [])


def test_unsigned_bundle_fails() -> None:
    with pytest.raises(SignatureError, match=r"bundle is not signed; sign it with `fnhost build --sign KEY`"):
        verify_bundle(open_bundle(pack_bundle(MANIFEST, WASM)), [generate_signing_key()[1]])


@pytest.mark.parametrize(
    "sig", [b"garbage", b"[]", b'{"v": 1, "key": "rsa:abc", "sig": ""}', b'{"v": 2, "key": "x", "sig": "y"}']
)
def test_malformed_signature_file_fails(sig: bytes) -> None:
    with pytest.raises(SignatureError, match=r"fnhost\.sig is malformed"):
        verify_bundle(open_bundle(pack_bundle(MANIFEST, WASM, signature=sig)), [generate_signing_key()[1]])


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    pem, _ = generate_signing_key()
    path = save_signing_key(tmp_path / "signing.pem", pem)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == pem
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_signing_key(path, generate_signing_key()[0])
    assert path.read_bytes() == pem


def test_malformed_trusted_key_is_a_config_error() -> None:
    for bad in ["ed25519:", "ed25519:!!!", "ssh-ed25519 AAAA", "ed25519:" + "QUFB" * 4]:
        with pytest.raises(ValueError, match="ed25519:<base64 of 32 bytes>"):
            parse_public_key(bad)


# --- API keys ----------------------------------------------------------------------------------


@pytest.fixture
def db(any_db: Database) -> Database:
    """Keys and the audit log on each backend (conftest's `any_db`: SQLite, and a real PostgreSQL)."""
    return any_db


def test_token_format_and_authenticate(db: Database) -> None:
    keys = ApiKeys(db)
    key_id, token = keys.create("ci", {"deploy", "invoke"})
    prefix, token_id, secret = token.split("_", 2)
    assert (prefix, token_id) == ("fnh", key_id) and len(secret) == 43
    principal = keys.authenticate(f"Bearer {token}")
    assert principal.key_id == key_id and principal.scopes == {"deploy", "invoke"}
    assert keys.authenticate(f"bearer   {token} ").key_id == key_id


def test_tokens_are_stored_only_as_hashes(tmp_path: Path) -> None:
    db = Database(tmp_path / "fnhost.db")
    keys = ApiKeys(db)
    tokens = [keys.create(f"k{i}", {"invoke"})[1] for i in range(3)]
    db.db.execute("PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("fnhost.db"))
    for token in tokens:
        assert token.encode() not in stored
        assert token.split("_", 2)[2].encode() not in stored  # the secret part (it may itself contain "_")
    listed = keys.list()
    assert [k.name for k in listed] == ["k0", "k1", "k2"]
    assert not any(token in repr(listed) for token in tokens)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
        ("Bearer", "malformed Authorization header"),
        ("Bearer not-a-token", "malformed API key"),
        ("Bearer fnh_0123456789abcdef_" + "A" * 43, "unknown API key"),
    ],
)
def test_authenticate_rejects(db: Database, header: str | None, match: str) -> None:
    with pytest.raises(Unauthorized, match=match) as e:
        ApiKeys(db).authenticate(header)
    assert "Authorization: Bearer <token>" in str(e.value)


def test_wrong_secret_and_revoked_key(db: Database) -> None:
    keys = ApiKeys(db)
    keys.create("admin", {"admin"})
    key_id, token = keys.create("ci", {"invoke"})
    with pytest.raises(Unauthorized, match="unknown API key"):
        keys.authenticate(f"Bearer {token[:-1]}{'B' if token[-1] != 'B' else 'C'}")
    assert keys.revoke(key_id).revoked_at is not None
    assert keys.revoke(key_id).revoked_at is not None  # idempotent
    with pytest.raises(Unauthorized, match=f"API key {key_id} was revoked"):
        keys.authenticate(f"Bearer {token}")


def test_scopes(db: Database) -> None:
    keys = ApiKeys(db)
    admin = keys.authenticate("Bearer " + keys.create("root", {"admin"})[1])
    for scope in ("admin", "deploy", "invoke"):
        admin.require(scope, function="anything")
    invoker = keys.authenticate("Bearer " + keys.create("app", {"invoke"}, functions=["hello", "bye"])[1])
    invoker.require("invoke", function="hello")
    invoker.require("invoke")
    with pytest.raises(Forbidden, match="lacks the 'deploy' scope"):
        invoker.require("deploy", function="hello")
    with pytest.raises(Forbidden, match="lacks the 'admin' scope"):
        invoker.require("admin")
    with pytest.raises(NotFound, match="function 'other' does not exist"):  # not its to know of
        invoker.require("invoke", function="other")
    deployer = keys.authenticate("Bearer " + keys.create("ci", {"deploy"})[1])
    deployer.require("deploy", function="other")
    with pytest.raises(Forbidden, match="lacks the 'invoke' scope"):
        deployer.require("invoke", function="other")


def test_create_validates(db: Database) -> None:
    keys = ApiKeys(db)
    with pytest.raises(ValueError, match="scopes"):
        keys.create("x", {"root"})
    with pytest.raises(ValueError, match="scopes"):
        keys.create("x", set())
    with pytest.raises(ValueError, match="admin key cannot be limited"):
        keys.create("x", {"admin"}, functions=["hello"])
    with pytest.raises(ValueError, match="not a valid function name"):
        keys.create("x", {"invoke"}, functions=["../etc"])


def test_last_admin_cannot_be_revoked(db: Database) -> None:
    keys = ApiKeys(db)
    first, _ = keys.create("a1", {"admin"})
    second, _ = keys.create("a2", {"admin", "deploy"})
    keys.revoke(first)
    with pytest.raises(Conflict, match="last active admin key"):
        keys.revoke(second)


def test_bootstrap_admin(db: Database, tmp_path: Path) -> None:
    keys = ApiKeys(db)
    path = keys.ensure_bootstrap_admin(tmp_path)
    assert path == tmp_path / "admin.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    principal = keys.authenticate("Bearer " + path.read_text().strip())
    assert principal.scopes == {"admin"}
    assert keys.ensure_bootstrap_admin(tmp_path) is None


def test_bootstrap_admin_refuses_stale_file(db: Database, tmp_path: Path) -> None:
    (tmp_path / "admin.key").write_text("fnh_old\n")
    with pytest.raises(Conflict, match="delete the file"):
        ApiKeys(db).ensure_bootstrap_admin(tmp_path)
    assert ApiKeys(db).list() == []


def test_bootstrap_admin_races_create_one_key(db: Database, tmp_path: Path) -> None:
    keys = ApiKeys(db)
    results: list[Path | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(keys.ensure_bootstrap_admin(tmp_path)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert len(keys.list()) == 1


# --- audit log ---------------------------------------------------------------------------------


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.record(
            "function.deploy",
            f"fn-{i}",
            "ok",
            actor_key_id="k1",
            request_id=f"r{i}",
            detail={"version": i, "sha256": "ab" * 32},
        )


def test_audit_records_and_verifies(db: Database) -> None:
    log = AuditLog(db)
    assert log.verify().ok and log.verify().checked == 0
    first = log.record("key.create", "k2", "ok", actor_key_id="k1", detail={"scopes": ["invoke"]})
    assert first.id == 1 and first.prev_hash == "0" * 64 and first.detail == {"scopes": ["invoke"]}
    fill(log, 9)
    result = log.verify()
    assert (result.ok, result.checked, result.first_broken_id, result.reason) == (True, 10, None, None)
    assert log.head() == (10, log.list(limit=1, after_id=9)[0].hash)


def test_audit_pagination(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 7)
    page1 = log.list(limit=3)
    page2 = log.list(limit=3, after_id=page1[-1].id)
    page3 = log.list(limit=3, after_id=page2[-1].id)
    assert [e.id for e in page1 + page2 + page3] == list(range(1, 8))
    assert page2[0].prev_hash == page1[-1].hash


def tampered(db: Database, sql: str, params: list[object] | None = None) -> tuple[AuditLog, VerifyResult]:
    """Five good entries, then `sql` run behind the log's back, then verify()."""
    log = AuditLog(db)
    fill(log, 5)
    with db.transaction() as conn:
        conn.execute(sql, params or [])
    return log, log.verify()


@pytest.mark.parametrize(
    ("sql", "broken_id", "checked", "reason"),
    [
        ("UPDATE audit_log SET outcome = 'denied' WHERE id = 3", 3, 2, "content does not match its hash"),
        ("UPDATE audit_log SET detail = '{' WHERE id = 3", 3, 2, "the entry was edited"),
        ("UPDATE audit_log SET time = 946684800.0 WHERE id = 1", 1, 0, "the entry was edited"),
        ("DELETE FROM audit_log WHERE id = 2", 3, 1, "expected entry 2 here: entries were deleted"),
        ("DELETE FROM audit_log WHERE id = 5", 5, 4, "entries were deleted from the end"),
    ],
)
def test_audit_detects_tampering(db: Database, sql: str, broken_id: int, checked: int, reason: str) -> None:
    _, result = tampered(db, sql)
    assert (result.ok, result.first_broken_id, result.checked) == (False, broken_id, checked)
    assert reason in (result.reason or "")


def test_audit_detects_edit_with_recomputed_hash(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 5)
    e = log.list(limit=1, after_id=2)[0]
    detail = audit_module._canonical_json(e.detail)
    forged = audit_module._entry_hash(
        e.prev_hash, e.id, e.time, e.actor_key_id, e.action, e.target, "denied", e.request_id, detail
    )
    with db.transaction() as conn:
        conn.execute("UPDATE audit_log SET outcome = 'denied', hash = ? WHERE id = 3", [forged])
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 4)
    assert "prev_hash does not match" in (result.reason or "")


def test_audit_deleted_tail_stays_visible_after_more_appends(db: Database) -> None:
    log, _ = tampered(db, "DELETE FROM audit_log WHERE id = 5")
    assert log.record("function.delete", "fn-x", "ok").id == 6
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 6)


def test_audit_detects_reordered_rows(db: Database) -> None:
    log = AuditLog(db)
    fill(log, 5)
    cols = "time, actor_key_id, action, target, outcome, request_id, detail, prev_hash, hash"
    with db.transaction() as conn:
        r2 = conn.execute(f"SELECT {cols} FROM audit_log WHERE id = 2").fetchone()
        r3 = conn.execute(f"SELECT {cols} FROM audit_log WHERE id = 3").fetchone()
        assignments = ", ".join(f"{c} = ?" for c in cols.split(", "))
        conn.execute(f"UPDATE audit_log SET {assignments} WHERE id = 2", [*r3])
        conn.execute(f"UPDATE audit_log SET {assignments} WHERE id = 3", [*r2])
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 2)


def test_audit_concurrent_appends_from_threads_keep_one_chain(db: Database) -> None:
    log = AuditLog(db)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                log.record("invoke", f"fn-{n}", "ok", request_id=f"{n}-{i}")
        except BaseException as e:  # surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = log.verify()
    assert (result.ok, result.checked) == (True, 200)


def test_audit_concurrent_appends_from_processes_keep_one_chain(db: Database) -> None:
    AuditLog(db)
    script = (
        "import sys\n"
        "from fnhost.stores.database import open_database\n"
        "from fnhost.control.audit import AuditLog\n"
        "log = AuditLog(open_database(sys.argv[1]))\n"
        "for i in range(30): log.record('invoke', 'fn', 'ok', request_id=f'{sys.argv[2]}-{i}')\n"
    )
    host_dir = Path(audit_module.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(host_dir)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(getattr(db, "dsn", None) or db.path), str(n)], env=env)
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    result = AuditLog(db).verify()
    assert (result.ok, result.checked) == (True, 120)


def test_create_key_rejects_non_string_scopes(tmp_path: Path) -> None:
    keys = ApiKeys(Database(tmp_path / "db.sqlite"))
    with pytest.raises(ValueError, match="scopes: must be scope names"):
        keys.create("ci", [{}])  # type: ignore[list-item]
    assert keys.list() == []


# --- upgrading a data dir from TEXT timestamps ------------------------------------------------


def test_keys_and_audit_from_before_real_timestamps_keep_working(any_db: Database) -> None:
    """A database written when keys and the audit log kept ISO-8601 text times: opening it converts them
    to REAL epoch seconds; the tokens still authenticate, the revoked key stays revoked, and the chain
    (hashed over the ISO text) verifies unchanged and still shows an edit."""
    import hashlib

    from fnhost.stores import api_keys as keys_module

    any_db.migrate("api_keys", keys_module.MIGRATIONS[:2])
    any_db.migrate("audit", audit_module.MIGRATIONS[:2])
    tokens = {key_id: f"fnh_{key_id}_" + key_id[-1].upper() * 43 for key_id in ("00000000000000aa", "00000000000000bb")}
    token_hashes = {key_id: hashlib.sha256(token.encode()).hexdigest() for key_id, token in tokens.items()}
    with any_db.transaction() as conn:
        for key_id, scopes, namespace, created, revoked in [
            ("00000000000000aa", '["admin"]', None, "2026-11-26T22:34:48.504785Z", None),
            ("00000000000000bb", '["invoke"]', "default", "2026-11-26T22:35:03.648137Z", "2026-11-27T08:00:00.000001Z"),
        ]:
            conn.execute(
                "INSERT INTO api_keys (id, name, token_sha256, scopes, functions, namespace, may_grant, created_at,"
                " revoked_at) VALUES (?, ?, ?, ?, NULL, ?, '[]', ?, ?)",
                [key_id, f"key-{key_id}", token_hashes[key_id], scopes, namespace, created, revoked],
            )
        prev = "0" * 64
        for entry_id, time_text in enumerate(["2026-11-26T22:34:52.611435Z", "2026-11-26T23:59:59.999999Z"], 1):
            content = {"id": entry_id, "time": time_text, "actor": "00000000000000aa", "action": "key.create",
                       "target": "-", "outcome": "ok", "request_id": None, "detail": {"n": entry_id}}  # fmt: skip
            canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            entry_hash = hashlib.sha256((prev + canonical).encode("ascii")).hexdigest()
            conn.execute(
                "INSERT INTO audit_log (id, time, actor_key_id, action, target, outcome, request_id, detail,"
                " prev_hash, hash) VALUES (?, ?, '00000000000000aa', 'key.create', '-', 'ok', NULL, ?, ?, ?)",
                [entry_id, time_text, json.dumps({"n": entry_id}, separators=(",", ":")), prev, entry_hash],
            )
            prev = entry_hash
        conn.execute("UPDATE audit_head SET written = 2 WHERE id = 1")

    keys, log = ApiKeys(any_db), AuditLog(any_db)
    listed = {k.key_id: k for k in keys.list()}
    assert listed["00000000000000aa"].created_at == 1795732488.504785
    assert (listed["00000000000000bb"].created_at, listed["00000000000000bb"].revoked_at) == (
        1795732503.648137,
        1795766400.000001,
    )
    assert keys.authenticate(f"Bearer {tokens['00000000000000aa']}").key_id == "00000000000000aa"
    with pytest.raises(Unauthorized, match="was revoked at 2026-11-27T08:00:00Z"):
        keys.authenticate(f"Bearer {tokens['00000000000000bb']}")
    assert keys.revoke("00000000000000bb").revoked_at == 1795766400.000001  # idempotent on a converted row
    assert [e.time for e in log.list()] == [1795732492.611435, 1795737599.999999]
    result = log.verify()
    assert (result.ok, result.checked) == (True, 2)
    appended = log.record("key.revoke", "00000000000000bb", "ok")
    assert appended.id == 3 and appended.prev_hash == prev and log.verify().ok
    with any_db.transaction() as conn:
        conn.execute("UPDATE audit_log SET time = time + 0.000001 WHERE id = 2")
    assert (log.verify().ok, log.verify().first_broken_id) == (False, 2)
