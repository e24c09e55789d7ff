"""Crash-safe file writes shared by the wasm store and the compile cache."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import InsufficientStorage

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(where: Path | str, cause: object) -> InsufficientStorage:
    """The one message for a full disk: which path, what failed, what to do."""
    return InsufficientStorage(
        f"the disk holding {where} is full ({cause}); nothing was changed: free space there and retry"
    )


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees either no file or the whole file: a temp file in the
    same directory, then a rename. Concurrent writers of the same content cannot tear it.

    A full disk raises `InsufficientStorage` naming the directory."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS:
            raise disk_full(path.parent, e.strerror) from e
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            raise disk_full(path.parent, e.strerror) from e
        raise
