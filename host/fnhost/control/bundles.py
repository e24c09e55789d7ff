"""Bundles: the zip a function is deployed as, validated before anything in it is trusted.

A bundle holds `fnhost.toml` at its root, the wasm file its `module` field names and, optionally,
`fnhost.sig` (see `fnhost.control.signing`). Other files (a README, `__MACOSX/` litter, directory
entries) are allowed and ignored: their names and headers are checked like every entry's, but they
are never decompressed, stored, digested or signed.

`open_bundle` treats the upload as hostile: it bounds the upload, the number of entries, the size
of the central directory and the declared *and* actually decompressed sizes and ratios, and it
rejects absolute or escaping paths, backslashes, symlinks, duplicate names, encrypted entries and
compression methods other than store and deflate. It writes nothing anywhere.

The digest (`Bundle.sha256`) covers the manifest text and the wasm bytes, not the zip, so packing
the same content again, with any tool, gives the same digest and keeps its signature valid.
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

from ..errors import BundleError, BundleTooLarge, ManifestError
from ..manifest import Manifest

MANIFEST_NAME = "fnhost.toml"
SIGNATURE_NAME = "fnhost.sig"
WASM_MAGIC = b"\0asm"
MiB = 1024 * 1024

_DIGEST_DOMAIN = b"fnhost-bundle-v1\0"
_PACK_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build-time leaks in
_READ_CHUNK = 64 * 1024
# Bytes a central-directory record may take on average: 46 fixed plus name, extra and comment.
# Bounding the directory bounds the work zipfile does before we can count the entries.
_CENTRAL_RECORD_BUDGET = 4096
# What zipfile and zlib raise on a malformed archive (found by mutating valid bundles).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
_ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"


@dataclass(frozen=True)
class BundleLimits:
    """How big a bundle may be. The defaults suit functions up to a few tens of MiB of wasm."""

    max_upload_bytes: int = 64 * MiB
    max_uncompressed_bytes: int = 256 * MiB
    max_ratio: int = 200  # uncompressed/compressed, per entry and in total
    max_entries: int = 64


@dataclass(frozen=True)
class Bundle:
    """A validated bundle. Nothing here has been stored or compiled yet."""

    manifest: Manifest
    manifest_text: str
    wasm: bytes
    sha256: str  # bundle_digest(manifest_text, wasm): independent of how the zip was made
    signature: bytes | None  # the raw fnhost.sig, checked by signing.verify_bundle


def bundle_digest(manifest_text: str, wasm: bytes) -> str:
    """The normalized digest of a bundle's content, as hex.

    sha256 over a domain tag, then the manifest's UTF-8 bytes and the wasm bytes, each preceded by
    its length as 8 big-endian bytes so that no two different pairs encode alike.
    """
    manifest_bytes = manifest_text.encode("utf-8")
    h = hashlib.sha256(_DIGEST_DOMAIN)
    for part in (manifest_bytes, wasm):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def open_bundle(data: bytes, *, limits: BundleLimits = BundleLimits()) -> Bundle:
    """Validate an uploaded bundle and return its content. Raises BundleError (BundleTooLarge for size)."""
    if len(data) > limits.max_upload_bytes:
        raise BundleTooLarge(
            f"bundle is {len(data)} bytes, over the {limits.max_upload_bytes}-byte upload limit; "
            "shrink the wasm (strip debug info, build in release mode) or raise max_upload_bytes"
        )
    _check_central_directory_size(data, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as e:
        raise BundleError(
            f"bundle is not a valid zip file ({e}); create it with `fnhost build` or `zip`"
        ) from None
    with zf:
        entries = _check_entries(zf.infolist(), limits)
        if MANIFEST_NAME not in entries:
            raise BundleError(
                f"bundle has no {MANIFEST_NAME} at its root; add one (entries found: "
                f"{_names_for_message(entries)})"
            )
        budget = _Budget(limits.max_uncompressed_bytes)
        manifest_text = _decode_manifest(_read_entry(zf, entries[MANIFEST_NAME], budget, limits))
        manifest = parse_manifest(manifest_text)
        if manifest.module not in entries:
            raise BundleError(
                f"bundle has no {manifest.module}, the module {MANIFEST_NAME} names; add the wasm file "
                f"at that path or fix `module` in {MANIFEST_NAME}"
            )
        if manifest.module in (MANIFEST_NAME, SIGNATURE_NAME):
            raise BundleError(
                f"module: {manifest.module!r} is reserved; name the wasm file e.g. function.wasm"
            )
        wasm = _read_entry(zf, entries[manifest.module], budget, limits)
        check_wasm_header(wasm, manifest.module)
        signature = None
        if SIGNATURE_NAME in entries:
            signature = _read_entry(zf, entries[SIGNATURE_NAME], budget, limits)
    return Bundle(
        manifest=manifest,
        manifest_text=manifest_text,
        wasm=wasm,
        sha256=bundle_digest(manifest_text, wasm),
        signature=signature,
    )


def pack_bundle(
    manifest_text: str, wasm: bytes, *, signature: bytes | None = None, compresslevel: int = 9
) -> bytes:
    """A deterministic bundle: sorted entries, fixed timestamps and modes, deflate level 9.

    The same arguments give the same bytes (with the same zlib). `compresslevel` 1 packs an 18 MB
    component ~10x faster for 13 % more bytes (bench/pack.py): what an upload that is sent once
    (`fnhost up`) wants; the digest and the signature cover the contents, not the zip, so either level
    deploys the same version. Raises BundleError if the manifest
    is invalid or `wasm` is not WebAssembly, so that only openable bundles are made.
    """
    manifest = parse_manifest(manifest_text)
    check_wasm_header(wasm, manifest.module)
    files = {MANIFEST_NAME: manifest_text.encode("utf-8"), manifest.module: wasm}
    if signature is not None:
        files[SIGNATURE_NAME] = signature
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_PACK_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever packs it, so the mode bits below mean the same
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, files[name], compresslevel=compresslevel)
    return out.getvalue()


def parse_manifest(manifest_text: str) -> Manifest:
    """`Manifest.from_toml`, with its message kept and the error reported as a bundle error."""
    try:
        return Manifest.from_toml(manifest_text)
    except ManifestError as e:
        raise BundleError(f"{MANIFEST_NAME}: {e}") from e


def check_wasm_header(wasm: bytes, name: str) -> None:
    """A cheap sanity check; compiling (the host's job) is the real validation."""
    if wasm[:4] != WASM_MAGIC:
        raise BundleError(
            f"{name} is not a WebAssembly binary (it does not start with \\0asm); "
            "point `module` at the .wasm your build produced"
        )


class _Budget:
    """Decompressed bytes left for the whole bundle."""

    def __init__(self, total: int) -> None:
        self.left = total


def _check_central_directory_size(data: bytes, limits: BundleLimits) -> None:
    """Refuse a central directory too big for `max_entries` before zipfile parses every record in it.

    Finds the end-of-central-directory record the way zipfile does (the last 22 bytes, else the
    last signature within the maximal comment length) and, for zip64, the record zipfile reads.
    Anything unparsable is left for zipfile to reject.
    """
    eocd_at = len(data) - _EOCD.size
    if eocd_at < 0:
        return
    if not (data[eocd_at : eocd_at + 4] == _EOCD_SIGNATURE and data[-2:] == b"\0\0"):
        eocd_at = data.rfind(_EOCD_SIGNATURE, max(0, len(data) - _EOCD.size - 0xFFFF))
        if eocd_at < 0 or eocd_at + _EOCD.size > len(data):
            return
    _, _, _, _, entries, directory_size, _, _ = _EOCD.unpack_from(data, eocd_at)
    locator_at = eocd_at - _ZIP64_LOCATOR.size
    if locator_at >= 0 and data[locator_at : locator_at + 4] == _ZIP64_LOCATOR_SIGNATURE:
        record_at = locator_at - _ZIP64_EOCD.size
        if record_at >= 0 and data[record_at : record_at + 4] == _ZIP64_EOCD_SIGNATURE:
            record = _ZIP64_EOCD.unpack_from(data, record_at)
            entries, directory_size = record[7], record[8]
    budget = limits.max_entries * _CENTRAL_RECORD_BUDGET
    if entries > limits.max_entries or directory_size > budget:
        raise BundleError(
            f"bundle's central directory lists {entries} entries in {directory_size} bytes, more than "
            f"{limits.max_entries} entries need; a bundle holds {MANIFEST_NAME}, the module and "
            f"optionally {SIGNATURE_NAME}: leave other files out"
        )


def _check_entries(infos: list[zipfile.ZipInfo], limits: BundleLimits) -> dict[str, zipfile.ZipInfo]:
    """Check every entry's name and header; return the regular files by name."""
    if len(infos) > limits.max_entries:
        raise BundleError(
            f"bundle has {len(infos)} entries, over the limit of {limits.max_entries}; "
            f"a bundle needs only {MANIFEST_NAME}, the module and optionally {SIGNATURE_NAME}"
        )
    files: dict[str, zipfile.ZipInfo] = {}
    seen: dict[str, str] = {}
    declared_total = compressed_total = 0
    for info in infos:
        name = info.filename
        _check_entry_name(name)
        folded = name.casefold()
        if folded in seen:
            raise BundleError(
                f"bundle has two entries named {name!r}"
                + ("" if seen[folded] == name else f" and {seen[folded]!r} (names differ only in case)")
                + "; keep one"
            )
        seen[folded] = name
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"bundle entry {name!r} is a symlink; put the file itself in the bundle")
        if info.flag_bits & 0x1:
            raise BundleError(f"bundle entry {name!r} is encrypted; bundles must not be password-protected")
        if info.compress_type not in _ALLOWED_COMPRESSION:
            raise BundleError(
                f"bundle entry {name!r} uses compression method {info.compress_type}; "
                "only stored and deflate are accepted (the `zip` default)"
            )
        if info.is_dir():
            if info.file_size:
                raise BundleError(f"bundle entry {name!r} is a directory with content; the zip is corrupt")
            continue
        if info.file_size > limits.max_uncompressed_bytes:
            raise BundleTooLarge(
                f"bundle entry {name!r} declares {info.file_size} bytes uncompressed, over the "
                f"{limits.max_uncompressed_bytes}-byte limit; shrink the file"
            )
        _check_ratio(f"bundle entry {name!r}", info.file_size, info.compress_size, limits)
        declared_total += info.file_size
        compressed_total += info.compress_size
        files[name] = info
    if declared_total > limits.max_uncompressed_bytes:
        raise BundleTooLarge(
            f"bundle declares {declared_total} bytes uncompressed in total, over the "
            f"{limits.max_uncompressed_bytes}-byte limit; shrink or leave out files"
        )
    _check_ratio("the bundle as a whole", declared_total, compressed_total, limits)
    return files


def _check_entry_name(name: str) -> None:
    if not name:
        raise BundleError("bundle has an entry with an empty name; the zip is corrupt, create it again")
    if "\\" in name:
        raise BundleError(f"bundle entry {name!r} contains a backslash; use '/' as the path separator")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"bundle entry {name!r} is an absolute path; paths must be relative to the root")
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        raise BundleError(f"bundle entry {name!r} contains '..'; paths must stay inside the bundle")
    if any(part in ("", ".") for part in parts):
        raise BundleError(f"bundle entry {name!r} has an empty or '.' path component; use a plain path")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise BundleError(f"bundle entry {name!r} contains control characters; rename it")


def _check_ratio(what: str, uncompressed: int, compressed: int, limits: BundleLimits) -> None:
    if uncompressed > limits.max_ratio * max(compressed, 1):
        raise BundleTooLarge(
            f"{what} expands {uncompressed} bytes from {compressed} compressed, a ratio "
            f"over {limits.max_ratio}:1 (a zip bomb?); bundle ordinary build output"
        )


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limits: BundleLimits) -> bytes:
    """Decompress one entry in chunks, stopping as soon as it passes any limit, whatever its header says."""
    name = info.filename
    cap = min(info.file_size, budget.left, limits.max_ratio * max(info.compress_size, 1))
    chunks: list[bytes] = []
    size = 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(_READ_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise BundleTooLarge(
                        f"bundle entry {name!r} decompresses to more than its header declares or the "
                        f"limits allow ({cap} bytes); the zip is corrupt or hostile"
                    )
                chunks.append(chunk)
    except _ZIP_ERRORS as e:
        raise BundleError(f"bundle entry {name!r} is corrupt ({e}); create the bundle again") from None
    if size != info.file_size:
        raise BundleError(
            f"bundle entry {name!r} has {size} bytes but its header declares {info.file_size}; "
            "the zip is corrupt, create it again"
        )
    budget.left -= size
    return b"".join(chunks)


def _decode_manifest(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{MANIFEST_NAME} is not UTF-8 text ({e}); save it as UTF-8") from None


def _names_for_message(entries: dict[str, zipfile.ZipInfo]) -> str:
    names = sorted(entries)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return shown or "none"
