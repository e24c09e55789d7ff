"""Large bodies outside `list<u8>` (WIT `fnhost:function/body`): the handler never sees the difference.

Wasmtime moves a `list<u8>` one value per byte, so the host leaves a request body or invoke payload
over 32 KiB out of the record, and this SDK returns an output over 32 KiB outside it too, through
the channels CPython handles without decoding anything: the input is a file to read (in a directory
the host preopens read-only for the store; a store without one takes latin-1 text), the output the
next bytes written to stdout (announced first, so they
are not log lines). A WASI write may take fewer bytes than given (8,192 at most): the loop goes on
until every byte is written.
"""

from __future__ import annotations

import binascii
import os
import sys

from types import ModuleType

from componentize_py_types import Err

from ._errors import NotFound, Unavailable, host_error

_body: ModuleType | None
try:
    from wit_world.imports import body as _body
except ImportError:  # built against 0.1.0: every body is in the record
    _body = None

INLINE_MAX = 32 * 1024
"""Outputs up to this many bytes stay in the record (the host's threshold for inputs is the same)."""


def as_text(data: bytes | memoryview) -> tuple[str, object]:
    """Bytes for a `*-text` host call (blobs, outbound-http) and their `byte-text`: latin-1 when they
    are ASCII (a copy), else base64, which this CPython turns into an ASCII string ~1.5x faster than
    it lowers latin-1's non-ASCII characters (docs/performance.md, blobs)."""
    assert _body is not None
    raw = bytes(data)
    if raw.isascii():
        return raw.decode("latin-1"), _body.ByteText.LATIN1
    return binascii.b2a_base64(raw, newline=False).decode("ascii"), _body.ByteText.BASE64


def from_text(text: str, encoding: object) -> bytes:
    """The bytes a `*-text` host call returned as `text` in `encoding`."""
    assert _body is not None
    return text.encode("latin-1") if encoding == _body.ByteText.LATIN1 else binascii.a2b_base64(text)


def take_input(inline: bytes) -> bytes:
    """The input: the record's, or (when the record's is empty) the one the host left outside it."""
    if inline or _body is None:
        return bytes(inline)
    try:
        path = _body.take_input_file()
    except Err as e:
        error = host_error(e)
        if isinstance(error, NotFound):  # the record held it: the input is empty
            return b""
        if not isinstance(error, Unavailable):
            raise error from None
        # a store without an input directory (a host before 2026-12-04 gave warm instances none):
        # latin-1 text, which CPython encodes back in C (near a copy for ASCII, ~60 wasm instructions
        # a byte above U+007F)
        return _body.take_input(_body.ByteText.LATIN1).encode("latin-1")
    with open(path, "rb") as f:
        return f.read()


def put_output(data: bytes) -> bytes:
    """What goes in the record: `data`, or nothing once a large `data` is written to stdout."""
    if len(data) <= INLINE_MAX or _body is None:
        return data
    sys.stdout.flush()  # what the handler printed stays a log line, before the announced bytes
    try:
        _body.set_output_stdout(len(data))
    except Err as e:
        raise host_error(e) from None
    view = memoryview(data)
    done = 0
    while done < len(view):
        n = os.write(1, view[done:])
        if n <= 0:
            raise OSError(f"stdout took no bytes after {done} of {len(view)}")
        done += n
    return b""
