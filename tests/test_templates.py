"""`fnhost new LANG DIR`: each language's template builds, deploys and passes its own test as generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing_toolchain

from fnhost.build import read_guest
from fnhost.build.templates import new_function
from fnhost.cli import main
from fnhost.errors import BuildError, ManifestError

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ["python", "js", "rust", "go", "c"]


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_new_function_passes_its_own_test_as_generated(tmp_path: Path, language: str) -> None:
    src = tmp_path / f"hello-{language}"
    new_function(language, src)
    manifest, detected = read_guest(src)
    assert (manifest.name, detected, manifest.grants.get("kv")) == (f"hello-{language}", language, ("visits",))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "host")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_function.py"],
                          cwd=src, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0 and "just setup" in done.stdout:
        missing_toolchain(f"{language} toolchain not installed")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_new_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown language 'cobol'"):
        new_function("cobol", tmp_path / "a")
    with pytest.raises(ManifestError):
        new_function("python", tmp_path / "Not_A_Name")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "app.py").write_text("")
    with pytest.raises(BuildError, match="not an empty directory"):
        new_function("python", tmp_path / "full")


def test_cli_new_names_the_next_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "js", str(tmp_path / "web"), "--name", "site"]) == 0
    out = capsys.readouterr().out
    assert "app.js" in out and "fnhost build ." in out
    assert read_guest(tmp_path / "web")[0].name == "site"
    assert main(["new", "js", str(tmp_path / "web")]) == 1  # not empty any more
