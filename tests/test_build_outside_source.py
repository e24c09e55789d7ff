"""`fnhost build .` inside a guest's directory writes nothing there (a bundle in the source would
change its hash), so building again without a change is a cache hit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing_toolchain

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_build_dot_writes_outside_the_source_and_rebuilds_from_the_cache(tmp_path: Path) -> None:
    if not Path("/usr/bin/rustc").exists():
        missing_toolchain("rustc (Rust guests build fastest, so this test uses one)")
    src = tmp_path / "hello"
    shutil.copytree(ROOT / "guests" / "rust" / "hello", src, ignore=shutil.ignore_patterns("target"))
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "host"), "FNHOST_CACHE_DIR": str(tmp_path / "cache")}

    def build() -> str:
        done = subprocess.run([sys.executable, "-m", "fnhost", "build", "."], cwd=src, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    first = build()
    bundle = tmp_path / "cache" / "bundles" / "hello.zip"
    assert f"wrote {bundle}" in first and bundle.is_file()
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before  # nothing new in the source
    second = build()
    assert "hello: cached" in second and "building rust guest" not in second
