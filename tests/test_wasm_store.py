"""Deployed binaries by sha256: files (embedded) and database rows (either backend); damage at rest is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from fnhost.stores import InvalidArgument
from fnhost.stores.wasm import CorruptBlob, DatabaseWasmStore, FileWasmStore

WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 64
SHA = hashlib.sha256(WASM).hexdigest()


@pytest.fixture(params=["files", "database"])
def wasm_store(request: pytest.FixtureRequest, tmp_path: Path, any_db: Any) -> Any:
    return FileWasmStore(tmp_path / "wasm") if request.param == "files" else DatabaseWasmStore(any_db)


def test_round_trip_idempotent_put_and_delete(wasm_store: Any) -> None:
    assert wasm_store.get(SHA) is None
    wasm_store.put(SHA, WASM)
    wasm_store.put(SHA, WASM)
    assert wasm_store.get(SHA) == WASM
    assert wasm_store.header(SHA) == WASM[:8] and wasm_store.size(SHA) == len(WASM)
    wasm_store.delete(SHA)
    wasm_store.delete(SHA)
    assert wasm_store.get(SHA) is None
    assert wasm_store.header(SHA) is None


def test_a_binary_must_match_its_digest(wasm_store: Any) -> None:
    with pytest.raises(InvalidArgument, match="sha256 is not"):
        wasm_store.put("0" * 64, WASM)
    with pytest.raises(InvalidArgument, match="not 64 lower-case hex"):
        wasm_store.put("../../etc/passwd", WASM)
    assert wasm_store.get("0" * 64) is None


def test_damage_at_rest_is_refused_not_run(tmp_path: Path, any_db: Any) -> None:
    files = FileWasmStore(tmp_path / "wasm")
    files.put(SHA, WASM)
    path = tmp_path / "wasm" / f"{SHA}.wasm"
    path.write_bytes(WASM[:-1] + b"\x00")
    with pytest.raises(CorruptBlob, match="damaged at rest; deploy the function again"):
        files.get(SHA)
    rows = DatabaseWasmStore(any_db)
    rows.put(SHA, WASM)
    with any_db.transaction() as tx:
        tx.execute("UPDATE content_chunks SET data = ?", [WASM[:-1] + b"\x00"])
    with pytest.raises(CorruptBlob, match="database rows"):
        rows.get(SHA)
