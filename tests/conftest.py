from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fnhost import Host  # noqa: E402

CACHE_DIR = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
COMPILED = CACHE_DIR / "compiled"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    """A real host on a fresh data dir; compiled code is shared across tests (content-addressed)."""
    h = Host(tmp_path / "data", cache_dir=COMPILED)
    yield h
    h.close()
