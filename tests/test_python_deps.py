"""Python guests' own dependencies: requirements.txt / pyproject.toml installed per guest, wheels
that run in wasm only, part of the cache key, and never the build machine's site-packages."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from conftest import needs_componentize_py

from fnhost.build import build_guest, source_hash
from fnhost.build import python as python_build
from fnhost.errors import BuildError

APP = "import dateutil\nfrom fnhost_sdk import App\n\napp = App()\nWitWorld = app.world()\n"


def guest(root: Path, app: str = APP) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fnhost.toml").write_text('name = "deps"\n')
    (root / "app.py").write_text(app)
    return root


def test_requirements_and_pyproject_dependencies_are_read(tmp_path: Path) -> None:
    src = guest(tmp_path)
    assert python_build.declared_dependencies(src) == []
    (src / "requirements.txt").write_text("python-dateutil==2.9.0.post0\n")
    (src / "pyproject.toml").write_text('[project]\nname = "g"\ndependencies = ["six>=1.16"]\n')
    assert python_build.declared_dependencies(src) == ["-r", "requirements.txt", "six>=1.16"]
    (src / "pyproject.toml").write_text("[project]\ndependencies = 3\n")
    with pytest.raises(BuildError, match=r"\[project\] dependencies must be a list"):
        python_build.declared_dependencies(src)


def test_the_dependency_set_is_part_of_the_cache_key(tmp_path: Path) -> None:
    src = guest(tmp_path)

    def key() -> str:
        return source_hash(src, language="python", toolchain="t", sdk_dir=None)

    (src / "requirements.txt").write_text("python-dateutil==2.9.0\n")
    before = key()
    (src / "requirements.txt").write_text("python-dateutil==2.9.0.post0\n")
    assert key() != before


def test_a_native_only_package_is_a_build_error_naming_it(tmp_path: Path) -> None:
    src = guest(tmp_path / "g")
    wheels = src / "wheels"
    wheels.mkdir()
    (wheels / "fastthing-1.0-cp314-cp314-manylinux_2_17_x86_64.whl").write_bytes(b"")  # only a native wheel
    (src / "requirements.txt").write_text("--no-index\n--find-links wheels\nfastthing\n")  # offline
    with pytest.raises(BuildError, match=r"no wheel of fastthing can run in a wasm guest.*pure-Python"):
        python_build.install_dependencies(src)


@pytest.mark.slow
@needs_componentize_py
def test_the_build_machines_site_packages_never_reach_the_guest(tmp_path: Path) -> None:
    assert importlib.util.find_spec("dateutil") is not None, "this test needs dateutil on the host"
    with pytest.raises(BuildError, match="No module named 'dateutil'"):
        build_guest(guest(tmp_path / "g"), cache_dir=tmp_path / "cache")


@pytest.mark.slow
@needs_componentize_py
def test_requirements_are_installed_outside_the_source(tmp_path: Path) -> None:
    src = tmp_path / "dates"
    shutil.copytree(Path(__file__).resolve().parents[1] / "guests" / "python" / "dates", src)
    before = sorted(p.name for p in src.rglob("*"))
    built = build_guest(src, cache_dir=tmp_path / "cache")  # a real build; the requirements' install is shared
    assert built.language == "python" and not built.cached
    assert sorted(p.name for p in src.rglob("*")) == before  # no site-packages, no __pycache__, no outputs
    site = python_build.install_dependencies(src)
    assert site is not None and (site / "dateutil").is_dir() and not site.is_relative_to(src)

