from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fnhost import Host  # noqa: E402
from fnhost.build import require_tool  # noqa: E402
from fnhost.errors import BuildError  # noqa: E402

CACHE_DIR = Path(os.environ.get("FNHOST_CACHE_DIR", Path.home() / ".cache" / "fnhost"))
COMPILED = CACHE_DIR / "compiled"

# `just test` and CI install every toolchain, so there a missing one is a failure, never a silent skip.
REQUIRE_TOOLCHAINS = os.environ.get("FNHOST_REQUIRE_TOOLCHAINS") == "1" or os.environ.get("CI", "").lower() in (
    "1",
    "true",
    "yes",
)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    """`predicate()`'s first true value, polled every 20 ms; an AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def missing_toolchain(what: str) -> NoReturn:
    """Fail under `just test`/CI; skip (saying why) when a developer runs a subset with pytest alone."""
    if REQUIRE_TOOLCHAINS:
        pytest.fail(f"{what}: `just test` installs every guest toolchain, so this is a broken set-up (run `just setup`)")
    pytest.skip(f"{what}: skipped because pytest was run directly; `just test` installs it and runs every language")


def same_json(actual: bytes | None, expected: object) -> None:
    """`actual` is UTF-8 JSON whose value is `expected`: key order, whitespace and string escapes may
    differ (SDKs write JSON differently), types may not (true is not 1, 1 is not 1.0, unlike Python's ==)."""
    assert actual is not None
    try:
        value = json.loads(actual.decode())
    except ValueError as e:
        raise AssertionError(f"not UTF-8 JSON ({e}): {actual[:200]!r}") from None

    def canonical(v: object) -> str:
        return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    assert canonical(value) == canonical(expected), actual


def build_or_skip(src: Path):  # type: ignore[no-untyped-def]
    """`build_guest(src)`, or `missing_toolchain` when the build failed only because a toolchain is absent."""
    from fnhost.build import build_guest

    try:
        return build_guest(src)
    except BuildError as e:
        if "just setup" in str(e):
            missing_toolchain(f"{src.parent.name} toolchain not installed ({e})")
        raise


@pytest.fixture(scope="session")
def componentize_py() -> str:
    """The componentize-py executable (Python guests)."""
    try:
        return require_tool("componentize-py", "Python guests")
    except BuildError as e:
        missing_toolchain(str(e))


needs_componentize_py = pytest.mark.usefixtures("componentize_py")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    """A real host on a fresh data dir; compiled code is shared across tests (content-addressed)."""
    h = Host(tmp_path / "data", cache_dir=COMPILED)
    yield h
    h.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One real PostgreSQL server for the whole run (each test gets its own database from it)."""
    from postgres_server import PostgresServer

    try:
        server = PostgresServer()
    except FileNotFoundError as e:
        missing_toolchain(str(e))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """The stores' database on each backend: a fresh SQLite file, and a fresh PostgreSQL database."""
    from fnhost.stores.database import Database, PostgresDatabase

    if request.param == "sqlite":
        db: Database | PostgresDatabase = Database(tmp_path / "fnhost.db")
    else:
        db = PostgresDatabase(request.getfixturevalue("postgres_server").new_database())
    yield db
    db.close()
