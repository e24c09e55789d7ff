"""stdout and stderr that never drop the tail of a write.

In a component, CPython's `sys.stdout` is a TextIOWrapper straight over the raw file (no buffered
layer), and one WASI write takes at most 8,192 bytes: the wrapper ignored the short count, so a
single 100 KB `print` reached the host cut to 8,192 bytes. Both streams now write through a raw
writer that loops until every byte is taken (`write_through`, so nothing waits in a buffer when the
handler returns).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any


class FullWriter(io.RawIOBase):
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            n = os.write(self._fd, view[done:])
            if n <= 0:
                break
            done += n
        return done


def _wrap(stream: Any, fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        FullWriter(fd),  # type: ignore[arg-type]  # a raw writer is what sys.stdout wraps in a component too
        encoding=getattr(stream, "encoding", None) or "utf-8",
        errors=getattr(stream, "errors", None) or "backslashreplace",
        line_buffering=bool(getattr(stream, "line_buffering", True)),
        write_through=True,
    )


def install() -> None:
    sys.stdout = _wrap(sys.stdout, 1)
    sys.stderr = _wrap(sys.stderr, 2)
