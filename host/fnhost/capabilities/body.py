"""Large bodies outside `list<u8>` (WIT `fnhost:function/body`, since 0.2.0).

Wasmtime's C API lowers a `list<u8>` as one 32-byte value per byte (1 MB ≈ 0.1 s, and Wasmtime's
hostcall fuel stops a Python guest's response at ~2.7 MiB). For a component that imports this
interface, an input (request body, invoke payload) over `INLINE_MAX` bytes is left out of the call's
record (`CallState.input`), and the guest takes it as text (a string: one copy; base64 or latin-1)
or as a file in a directory preopened read-only for its store (`CallState.input_dir`: a fresh
store with a large input, and every warm one). It hands a
large output back as text, or as the next `length` bytes it writes to stdout: the store's stdout sink
(runtime/limits.py `Stdio`) keeps at most `length` bytes — and `length` is at most
`limits.max_response_bytes` — so the cap holds while the guest writes, whatever it writes.

These calls carry the invocation's own input and output, bounded by the request body limit and
`limits.max_response_bytes`: they do not count against the host-call budget. Core modules move
bodies through linear memory already (docs/abi.md): nothing is linked for them.
"""

from __future__ import annotations

import os

import wasmtime

from .base import Capability
from .errors import ErrorKind, HostCallError
from .operations import U64, ByteText, bytes_as_text, bytes_of_text, operation, text_size
from .state import CallState, OutputSink

INLINE_MAX = 32 * 1024
"""Inputs up to this many bytes stay in the record: below it `list<u8>` costs less than a host call."""
INTERFACE = "fnhost:function/body@0.2.0"
"""The import that tells the host a component can take its bodies this way."""
GUEST_DIR = "/fnhost"
"""Where the guest sees its store's input directory."""
INPUT_FILE = "input"


class BodyCapability(Capability):
    interface = "body"

    @operation(since="0.2.0")
    def take_input(self, state: CallState, encoding: ByteText) -> str:
        return bytes_as_text(_take(state), encoding)

    @operation(since="0.2.0")
    def take_input_file(self, state: CallState) -> str:
        if state.input is not None and state.input_dir is None:  # the store has no directory
            raise HostCallError(ErrorKind.UNAVAILABLE, "this store has no input directory; use take-input")
        data = _take(state)
        assert state.input_dir is not None
        path = os.path.join(state.input_dir, INPUT_FILE)
        with open(path, "xb") as f:  # removed after every call (runtime/sandbox.py)
            f.write(data)
        return f"{GUEST_DIR}/{INPUT_FILE}"

    @operation(since="0.2.0")
    def set_output(self, state: CallState, data: str, encoding: ByteText) -> None:
        limit = state.max_output_bytes
        if text_size(data, encoding) - (2 if encoding == "base64" else 0) > limit:  # before decoding
            raise _too_large(limit)
        output = bytes_of_text(data, encoding, "output")
        if len(output) > limit:
            raise _too_large(limit, len(output))
        _set(state, output)

    @operation(since="0.2.0")
    def set_output_stdout(self, state: CallState, length: U64) -> None:
        if length > state.max_output_bytes:
            raise _too_large(state.max_output_bytes, length)
        _set(state, OutputSink(length))

    def link_core(self, linker: wasmtime.Linker) -> None:
        """Core modules read and write bodies in linear memory."""


def _take(state: CallState) -> bytes:
    data, state.input = state.input, None
    if data is None:
        raise HostCallError(ErrorKind.NOT_FOUND, "the input is in the record (or was taken)")
    return data


def _set(state: CallState, output: bytes | OutputSink) -> None:
    if state.output is not None:
        raise HostCallError(ErrorKind.INVALID, "the output is already set")
    state.output = output


def _too_large(limit: int, size: int | None = None) -> HostCallError:
    what = "output" if size is None else f"output of {size} bytes"
    return HostCallError(ErrorKind.TOO_LARGE, f"{what} is over limits.max_response_bytes ({limit})")
