"""fnhost's component value codecs (runtime/convert.py) against wasmtime-py's own conversion.

Every function type of a real Python component — its exports and the fnhost imports — is checked
both ways: a value lowered by the codec and lifted by wasmtime-py comes back equal, and the other way
round. And importing fnhost leaves wasmtime-py's own conversion untouched.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
import wasmtime.component
from conftest import needs_componentize_py
from wasmtime import _ffi as ffi
from wasmtime.component import _types as t

from fnhost.build import build_guest
from fnhost.runtime import convert

ROOT = Path(__file__).resolve().parents[1]


def samples(ty: t.ValType) -> list[Any]:
    """A few values of `ty`, edge cases included (empty lists, every variant case)."""
    if isinstance(ty, t.ListType):
        if isinstance(ty.element, t.U8):
            return [b"", b"\x00\xff" * 3000 + b"x"]
        return [[], samples(ty.element)[-1:] * 3]
    if isinstance(ty, t.RecordType):
        out = []
        for i in range(2):
            record = t.Record()
            for name, field in ty.fields:
                values = samples(field)
                setattr(record, name, values[i % len(values)])
            out.append(record)
        return out
    if isinstance(ty, t.TupleType):
        return [tuple(samples(e)[-1] for e in ty.elements)]
    if isinstance(ty, t.VariantType | t.OptionType | t.ResultType):
        tagged = ty._tagged()
        out = []
        for name, case in ty._cases():
            payloads = [None] if case is None else samples(case)
            out += [t.Variant(name, p) if tagged else p for p in payloads]
        return out
    if isinstance(ty, t.String):
        return ["", "héllo"]
    if isinstance(ty, t.Bool):
        return [False, True]
    if isinstance(ty, t.U8 | t.U16 | t.U32 | t.U64 | t.S8 | t.S16 | t.S32 | t.S64):
        return [0, 7]
    if isinstance(ty, t.EnumType):
        return ty.names
    pytest.fail(f"no samples for {ty!r}")


def function_types(component: wasmtime.component.Component, engine: wasmtime.Engine) -> Iterator[tuple[str, Any]]:
    ctype = component.type
    for direction, items in (("import", ctype.imports(engine)), ("export", ctype.exports(engine))):
        for name, item in items.items():
            ty = item.ty
            if isinstance(ty, t.FuncType):
                yield f"{direction} {name}", ty
            elif isinstance(ty, t.ComponentInstanceType) and name.startswith("fnhost:"):
                for fname, f in ty.exports(engine).items():
                    if isinstance(f.ty, t.FuncType):
                        yield f"{direction} {name}#{fname}", f.ty


def roundtrip(store: wasmtime.Store, lower: Any, lift: Any, value: Any) -> Any:
    """Lower then lift `value`: fnhost's codecs lower into the slot, wasmtime-py's through a pointer to it."""
    slot = ffi.wasmtime_component_val_t()
    lower(store, value, ctypes.pointer(slot) if getattr(lower, "__self__", None) is not None else slot)
    return lift(slot)


@pytest.mark.slow
@needs_componentize_py
def test_codecs_agree_with_wasmtime_py_on_every_type_of_a_python_component() -> None:
    built = build_guest(ROOT / "guests" / "python" / "hello")
    engine = wasmtime.Engine(wasmtime.Config())
    component = wasmtime.component.Component(engine, built.wasm_path.read_bytes())
    store = wasmtime.Store(engine)
    checked = set()
    for name, fty in function_types(component, engine):
        types = [ty for _, ty in fty.params] + ([fty.result] if fty.result is not None else [])
        for ty in types:
            c = convert.codec(ty)
            for value in samples(ty):
                assert roundtrip(store, c.lower, ty.convert_from_c, value) == value, name
                assert roundtrip(store, ty.convert_to_c, c.lift, value) == value, name
                assert roundtrip(store, c.lower, c.lift, value) == value, name
        checked.add(name.split("#")[0])
    assert {"export handle-http", "export handle-event"} <= checked
    assert any("fnhost:function/kv" in n for n in checked), checked


def test_codec_refuses_values_of_the_wrong_shape() -> None:
    store = wasmtime.Store(wasmtime.Engine())
    slot = ffi.wasmtime_component_val_t()
    with pytest.raises(TypeError):
        convert._lower_bytes(store, "not bytes", slot)


def test_importing_fnhost_leaves_wasmtime_py_unpatched(tmp_path: Path) -> None:
    program = f"""
import wasmtime.component._types as t
before = (t.ListType.convert_to_c, t.ListType.convert_from_c, t.RecordType.convert_to_c)
import fnhost
from fnhost import Host
Host({str(tmp_path / "data")!r}).close()
after = (t.ListType.convert_to_c, t.ListType.convert_from_c, t.RecordType.convert_to_c)
assert before == after, "fnhost changed wasmtime-py's conversion"
"""
    subprocess.run([sys.executable, "-c", program], check=True, cwd=ROOT, timeout=60)


def test_a_linker_finalized_inside_add_funcs_critical_section_does_not_deadlock() -> None:
    """The garbage collector may drop an old linker (Wasmtime then calls `_finalize`) while `add_func`
    holds the host-function lock on the same thread: it must not wait for itself (it hung a suite)."""
    import threading

    from fnhost.runtime import convert

    done = threading.Event()

    def finalize_while_holding() -> None:
        with convert._host_lock:
            convert._finalize(2**31 - 1)  # an id nobody holds: dropping it is a no-op
        done.set()

    threading.Thread(target=finalize_while_holding, daemon=True).start()
    assert done.wait(10), "_finalize waited for the lock its own thread holds"
