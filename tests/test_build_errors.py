"""Build failures say what failed and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhost.build import build_guest
from fnhost.errors import BuildError, ManifestError


def guest(tmp_path: Path, manifest: str, files: dict[str, str]) -> Path:
    (tmp_path / "fnhost.toml").write_text(manifest)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_compile_error_shows_the_compiler_output(tmp_path: Path) -> None:
    src = guest(tmp_path, 'name = "bad"\n[build]\nlanguage = "c"\n', {"bad.c": "int main( { return 0; }\n"})
    with pytest.raises(BuildError) as e:
        build_guest(src, cache_dir=tmp_path / "cache")
    assert f"failed building {src}" in str(e.value)
    assert "bad.c:1:" in str(e.value)  # the compiler's own diagnostic, with file and line


def test_missing_manifest_and_unknown_language(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no fnhost\.toml"):
        build_guest(tmp_path)
    src = guest(tmp_path, 'name = "x"\n[build]\nlanguage = "cobol"\n', {})
    with pytest.raises(ManifestError, match=r"build\.language: must be one of"):
        build_guest(src)


def test_python_guest_without_app_module(tmp_path: Path) -> None:
    src = guest(tmp_path, 'name = "x"\n[build]\nlanguage = "python"\n', {"other.py": ""})
    with pytest.raises(BuildError, match=r"no app\.py"):
        build_guest(src, cache_dir=tmp_path / "cache")
