"""Writing secret files (signing keys, the bootstrap admin token): owner-only, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret_file(path: str | Path, data: bytes) -> Path:
    """Create `path` with mode 0600 and write `data`; fail if it exists rather than overwrite it.

    O_CREAT|O_EXCL also refuses to follow a symlink planted at `path`. The explicit fchmod makes the
    mode 0600 whatever the process umask is.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; refusing to overwrite it (move it away or choose another path)"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return path
