"""Component values to and from Python, with each type read once — inside fnhost's own calls only.

wasmtime-py's `ValType.convert_to_c/convert_from_c` re-read a type through the C API on every value
(a record's fields, a list's element type, a variant's cases) and convert a `list<u8>` one element
at a time (100 KB ≈ 0.4 s). Here a type is read once and turned into a `Codec`: two closures that
convert values of exactly that type, with `list<u8>` written and read in bulk (each element is a
32-byte `wasmtime_component_val_t`, kind at offset 0, payload at offset 8: two strided slice
assignments fill the whole array). Nothing in wasmtime-py is patched: other programs in the same
process keep the library's behaviour. fnhost uses codecs for its guest calls (`call`) and for its
host functions (`HostLinkerInstance.add_func`).

Values use wasmtime-py's Python shapes (`Record`, `Variant`, bytes for `list<u8>`, untagged
variants told apart by Python type), so a codec converts exactly what the library's conversion does.

What a value costs is mostly ctypes calls and objects, so the hot shapes avoid them: a codec lowers
into a value slot (the `wasmtime_component_val_t` itself, not a `ctypes.pointer` to it, ~0.7 µs
each); a string is copied into Wasmtime's memory by one `wasm_byte_vec_new` call (wasmtime-py's
`str_to_capi` makes three); a record starts as one `wasmtime_component_valrecord_copy` of a template
that already holds its field names (instead of one allocation per name) and gets its fields lowered
over the template's placeholder booleans. `python bench/convert.py` measures it next to wasmtime-py's
conversion (docs/performance.md has the figures).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from ctypes import byref
from dataclasses import dataclass
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import _types as t
from wasmtime.component._enter import catch_exceptions, enter_wasm
from wasmtime.component._linker import LinkerInstance

Lower = Callable[[Any, Any, Any], None]  # (store, value, the wasmtime_component_val_t slot to fill)
Lift = Callable[[Any], Any]  # (wasmtime_component_val_t) -> value; consumes what it owns

VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)
_PAYLOAD = ffi.wasmtime_component_val_t.of.offset
BULK_BYTES = VAL_SIZE == 32 and _PAYLOAD == 8  # the layout the bulk path was checked against
_U8 = ffi.WASMTIME_COMPONENT_U8.value
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
_BOOL = ffi.WASMTIME_COMPONENT_BOOL
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_U8_KIND_BYTE = bytes([_U8])

_byte_vec_new = type(ffi.dll.wasm_byte_vec_new)(("wasm_byte_vec_new", ffi.dll))
"""`wasm_byte_vec_new(out, size, data)` bound anew, with `data` as `c_char_p` (bytes pass without a copy);
wasmtime-py's own binding of it stays as it is."""
_byte_vec_new.restype = None
_byte_vec_new.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]

_SCALARS: dict[type, tuple[int, str, type | tuple[type, ...]]] = {
    t.Bool: (ffi.WASMTIME_COMPONENT_BOOL.value, "boolean", bool),
    t.S8: (ffi.WASMTIME_COMPONENT_S8.value, "s8", int),
    t.U8: (ffi.WASMTIME_COMPONENT_U8.value, "u8", int),
    t.S16: (ffi.WASMTIME_COMPONENT_S16.value, "s16", int),
    t.U16: (ffi.WASMTIME_COMPONENT_U16.value, "u16", int),
    t.S32: (ffi.WASMTIME_COMPONENT_S32.value, "s32", int),
    t.U32: (ffi.WASMTIME_COMPONENT_U32.value, "u32", int),
    t.S64: (ffi.WASMTIME_COMPONENT_S64.value, "s64", int),
    t.U64: (ffi.WASMTIME_COMPONENT_U64.value, "u64", int),
    t.F32: (ffi.WASMTIME_COMPONENT_F32.value, "f32", float),
    t.F64: (ffi.WASMTIME_COMPONENT_F64.value, "f64", float),
}
"""Numbers and booleans: (kind, union field, Python type accepted) — wasmtime-py's own checks (no range
check: ctypes wraps an out-of-range int as the library's conversion does)."""


@dataclass(frozen=True)
class Codec:
    lower: Lower
    lift: Lift
    classes: frozenset[type]  # the Python types of its values (to pick an untagged variant's case)


def _forget(val: Any) -> None:
    """Mark a value slot as moved out, so deleting its container does not free it twice."""
    val.kind = _BOOL
    val.of.boolean = False


def _view(address: int, size: int) -> memoryview:
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


def codec(ty: t.ValType) -> Codec:
    """The codec of one component type (read through the C API now, never again)."""
    if isinstance(ty, t.ListType):
        return _list(ty)
    if isinstance(ty, t.RecordType):
        return _record(ty)
    if isinstance(ty, t.TupleType):
        return _tuple(ty)
    if isinstance(ty, t.VariantType | t.OptionType | t.ResultType):
        return _variant_like(ty)
    if isinstance(ty, t.String):
        return Codec(_lower_string, _lift_string, frozenset({str}))
    scalar = _SCALARS.get(type(ty))
    if scalar is not None:
        return _scalar(ty, *scalar)
    classes: set[type] = set()
    ty.add_classes(classes)  # chars, enums, flags, resources: wasmtime-py's conversion, through a pointer
    to_c = ty.convert_to_c
    return Codec(lambda store, val, slot: to_c(store, val, ctypes.pointer(slot)), ty.convert_from_c,
                 frozenset(classes))  # fmt: skip


def _scalar(ty: t.ValType, kind: int, field: str, accepted: type | tuple[type, ...]) -> Codec:
    name = type(ty).__name__

    def lower(store: Any, val: Any, slot: Any) -> None:
        if not isinstance(val, accepted):
            raise TypeError(f"expected {accepted.__name__ if isinstance(accepted, type) else accepted} for {name} type")
        slot.kind = kind
        setattr(slot.of, field, val)

    classes: set[type] = set()
    ty.add_classes(classes)
    return Codec(lower, ty.convert_from_c, frozenset(classes))


def _lower_string(store: Any, val: Any, slot: Any) -> None:
    if not isinstance(val, str):
        raise TypeError("expected string type")
    data = val.encode("utf-8")
    _byte_vec_new(byref(slot.of.string), len(data), data)
    slot.kind = _STRING


def _lift_string(c: Any) -> str:
    if c.kind != _STRING:
        raise TypeError("expected a string value")
    vec = c.of.string
    try:
        return ctypes.string_at(vec.data, vec.size).decode("utf-8") if vec.size else ""
    finally:
        ffi.wasm_byte_vec_delete(byref(vec))


def _lower_into(store: Any, slots: Any, pairs: Any, n: int, free: Callable[[], None]) -> None:
    """Lower (lower, value) pairs into `slots(i)`; on failure mark the rest moved and free the array."""
    i = 0
    try:
        for lower, value in pairs:
            lower(store, value, slots(i))
            i += 1
    except BaseException:
        for j in range(i, n):
            _forget(slots(j))
        free()
        raise


def _lift_from(slots: Any, lifts: Any) -> list[Any]:
    """Lift `slots(i)` with each lift in turn, marking each slot moved (the caller frees the array)."""
    out = []
    for i, lift in enumerate(lifts):
        slot = slots(i)
        out.append(lift(slot))
        _forget(slot)
    return out


def _list(ty: t.ListType) -> Codec:
    element_ty = ty.element
    if isinstance(element_ty, t.U8) and BULK_BYTES:
        return Codec(_lower_bytes, _lift_bytes, frozenset({bytes}))
    element = codec(element_ty)
    lower_element, lift_element = element.lower, element.lift

    def lower(store: Any, val: Any, slot: Any) -> None:
        if not isinstance(val, list):
            raise TypeError("expected list value")
        n = len(val)
        raw = ffi.wasmtime_component_vallist_t()
        ffi.wasmtime_component_vallist_new_uninit(raw, n)
        data = raw.data
        pairs = ((lower_element, item) for item in val)
        _lower_into(store, data.__getitem__, pairs, n, lambda: ffi.wasmtime_component_vallist_delete(byref(raw)))
        slot.kind = _LIST
        slot.of.list = raw

    def lift(c: Any) -> Any:
        if c.kind != _LIST:
            raise TypeError("expected a list value")
        try:
            return _lift_from(c.of.list.data.__getitem__, [lift_element] * c.of.list.size)
        finally:
            ffi.wasmtime_component_vallist_delete(byref(c.of.list))

    return Codec(lower, lift, frozenset({list}))


def _lower_bytes(store: Any, val: Any, slot: Any) -> None:
    if not isinstance(val, bytes | bytearray | memoryview):
        raise TypeError("expected bytes value")
    n = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        view = _view(ctypes.addressof(raw.data.contents), n * VAL_SIZE)
        view[0::VAL_SIZE] = _U8_KIND_BYTE * n
        view[_PAYLOAD::VAL_SIZE] = val
    slot.kind = _LIST
    slot.of.list = raw


def _lift_bytes(c: Any) -> bytes:
    if c.kind != _LIST:
        raise TypeError("expected a list<u8> value")
    try:
        n = c.of.list.size
        if n == 0:
            return b""
        view = _view(ctypes.addressof(c.of.list.data.contents), n * VAL_SIZE)
        if view[0] != _U8:
            raise TypeError("expected a list<u8> value")
        return view[_PAYLOAD::VAL_SIZE].tobytes()
    finally:
        ffi.wasmtime_component_vallist_delete(byref(c.of.list))


def _field(val: Any, name: str) -> Any:
    """A record field's value: the attribute named as in WIT (a wasmtime `Record`'s), or its
    snake_case spelling (a host dataclass's: `body_encoding` for `body-encoding`)."""
    try:
        return getattr(val, name)
    except AttributeError:
        return getattr(val, name.replace("-", "_"))


def _record(ty: t.RecordType) -> Codec:
    fields = [(name, codec(field_ty)) for name, field_ty in ty.fields]
    names = [name for name, _ in fields]
    lowers = [c.lower for _, c in fields]
    lifts = [c.lift for _, c in fields]
    n = len(fields)
    template = _RecordTemplate(names)

    def lower(store: Any, val: Any, slot: Any) -> None:
        raw = ffi.wasmtime_component_valrecord_t()
        ffi.wasmtime_component_valrecord_copy(byref(raw), byref(template.record))  # the names, and a bool each
        data = raw.data
        pairs = ((lower_field, _field(val, name)) for lower_field, name in zip(lowers, names, strict=True))
        free = lambda: ffi.wasmtime_component_valrecord_delete(byref(raw))  # noqa: E731
        _lower_into(store, lambda i: data[i].val, pairs, n, free)
        slot.kind = _RECORD
        slot.of.record = raw

    def lift(c: Any) -> Any:
        if c.kind != _RECORD or c.of.record.size != n:
            raise TypeError(f"expected a record with fields {names}")
        try:
            data = c.of.record.data
            out = t.Record()
            for name, value in zip(names, _lift_from(lambda i: data[i].val, lifts), strict=True):
                setattr(out, name, value)
            return out
        finally:
            ffi.wasmtime_component_valrecord_delete(byref(c.of.record))

    return Codec(lower, lift, frozenset({t.Record}))


class _RecordTemplate:
    """A record value with a record type's field names and `false` in every field, owned by one codec:
    copying it is one C call for all the names (each field is then lowered over its placeholder, which
    owns nothing)."""

    def __init__(self, names: list[str]) -> None:
        self.record = ffi.wasmtime_component_valrecord_t()
        ffi.wasmtime_component_valrecord_new_uninit(self.record, len(names))
        for i, name in enumerate(names):
            entry = self.record.data[i]
            entry.name = ffi.str_to_capi(name)
            _forget(entry.val)

    def __del__(self, delete: Any = ffi.wasmtime_component_valrecord_delete, byref: Any = byref) -> None:
        delete(byref(self.record))  # bound at definition: it may run while the interpreter shuts down


def _tuple(ty: t.TupleType) -> Codec:
    elements = [codec(e) for e in ty.elements]
    lowers = [e.lower for e in elements]
    lifts = [e.lift for e in elements]
    n = len(elements)

    def lower(store: Any, val: Any, slot: Any) -> None:
        if not isinstance(val, tuple) or len(val) != n:
            raise TypeError(f"expected a tuple of {n}")
        raw = ffi.wasmtime_component_valtuple_t()
        ffi.wasmtime_component_valtuple_new_uninit(raw, n)
        free = lambda: ffi.wasmtime_component_valtuple_delete(byref(raw))  # noqa: E731
        _lower_into(store, raw.data.__getitem__, zip(lowers, val, strict=True), n, free)
        slot.kind = _TUPLE
        slot.of.tuple = raw

    def lift(c: Any) -> Any:
        if c.kind != _TUPLE or c.of.tuple.size != n:
            raise TypeError(f"expected a tuple of {n}")
        try:
            return tuple(_lift_from(c.of.tuple.data.__getitem__, lifts))
        finally:
            ffi.wasmtime_component_valtuple_delete(byref(c.of.tuple))

    return Codec(lower, lift, frozenset({tuple}))


def _variant_like(ty: t.VariantType | t.OptionType | t.ResultType) -> Codec:
    """variant, option and result: wasmtime-py's rules (tagged `Variant` unless the cases' Python
    types tell them apart), with the cases and their types read once."""
    tagged = ty._tagged()
    cases: list[tuple[str, Codec | None]] = [(name, None if c is None else codec(c)) for name, c in ty._cases()]
    by_name = dict(cases)
    classes: set[type] = {t.Variant} if tagged else set()
    if not tagged:
        for _, case in cases:
            classes |= case.classes if case is not None else {object}
    kind = _VARIANT if isinstance(ty, t.VariantType) else _OPTION if isinstance(ty, t.OptionType) else _RESULT
    encoded_names = {name: name.encode("utf-8") for name, _ in cases}  # a variant's discriminant, once

    def pick(val: Any) -> tuple[str, Codec | None, Any]:
        if tagged:
            if not isinstance(val, t.Variant):
                raise TypeError("expected Variant type")
            if val.tag not in by_name:
                raise ValueError("value not valid for this variant")
            return val.tag, by_name[val.tag], val.payload
        if isinstance(val, t.Variant) and val.tag in by_name:  # fnhost's own values name their case
            return val.tag, by_name[val.tag], val.payload
        for name, case in cases:
            if case is None:
                if val is None:
                    return name, None, None
            elif isinstance(val, tuple(case.classes)):
                return name, case, val
        raise ValueError("value not valid for this variant")

    def lower(store: Any, val: Any, slot: Any) -> None:
        name, case, payload = pick(val)
        boxed = None
        if case is not None:
            raw = ffi.wasmtime_component_val_t()
            case.lower(store, payload, raw)
            boxed = ffi.wasmtime_component_val_new(byref(raw))
        slot.kind = kind
        if kind == _VARIANT:
            encoded = encoded_names[name]
            _byte_vec_new(byref(slot.of.variant.discriminant), len(encoded), encoded)
            slot.of.variant.val = boxed
        elif kind == _OPTION:
            slot.of.option = boxed
        else:
            slot.of.result.is_ok = name == "ok"
            slot.of.result.val = boxed

    def lift(c: Any) -> Any:
        if c.kind != kind:
            raise TypeError("value does not match the variant type")
        if kind == _VARIANT:
            tag = ffi.to_str(c.of.variant.discriminant)
            ffi.wasm_byte_vec_delete(byref(c.of.variant.discriminant))
            boxed = c.of.variant.val
        elif kind == _OPTION:
            boxed = c.of.option
            tag = "some" if boxed else "none"
        else:
            boxed = c.of.result.val
            tag = "ok" if c.of.result.is_ok else "err"
        case = by_name.get(tag)
        if case is None:
            if boxed:
                ffi.wasmtime_component_val_delete(boxed)
            if tag not in by_name:
                raise ValueError(f"tag {tag} not found in variant cases")
            return t.Variant(tag) if tagged else None
        payload = case.lift(boxed.contents)
        _forget(boxed.contents)
        ffi.wasmtime_component_val_delete(boxed)
        return t.Variant(tag, payload) if tagged else payload

    return Codec(lower, lift, frozenset(classes))


@dataclass(frozen=True)
class Signature:
    """A component function's parameter codecs and result codec (None: no result)."""

    params: tuple[Codec, ...]
    result: Codec | None

    @classmethod
    def of(cls, fty: t.FuncType) -> Signature:
        result = fty.result
        return cls(tuple(codec(ty) for _, ty in fty.params), None if result is None else codec(result))


def call(func: Any, store: Any, signature: Signature, *args: Any) -> Any:
    """Call a component export: wasmtime-py's `Func.__call__` + `post_return`, through codecs."""
    params = (ffi.wasmtime_component_val_t * max(len(args), 1))()
    converted = 0
    try:
        for param, value in zip(signature.params, args, strict=True):
            param.lower(store, value, params[converted])
            converted += 1
        result = ffi.wasmtime_component_val_t()
        has_result = signature.result is not None

        def run() -> Any:
            return ffi.wasmtime_component_func_call(
                byref(func._func), store._context(), params, converted, byref(result) if has_result else None,
                1 if has_result else 0,
            )

        enter_wasm(run)
        value = signature.result.lift(result) if signature.result is not None else None
    finally:
        for i in range(converted):
            ffi.wasmtime_component_val_delete(byref(params[i]))
    func.post_return(store)
    return value


# --- host functions -------------------------------------------------------------------------------

HostFunc = Callable[..., Any]  # (store, *args) -> result, as `LinkerInstance.add_func` takes it
_host_funcs: dict[int, _HostEntry] = {}
_host_lock = threading.RLock()
"""Reentrant: `_finalize` runs when Wasmtime drops a linker, and the garbage collector may drop an
old one inside `add_func`'s critical section on the same thread (a plain Lock deadlocked there)."""
_next_id = 1
signatures = threading.local()
"""`signatures.cache`: where the running invocation keeps the host-function signatures it has seen
(the sandbox sets it to a dict owned by the running version: a version's import types never change)."""


@dataclass
class _HostEntry:
    func: HostFunc


class HostLinkerInstance(LinkerInstance):
    """A `LinkerInstance` whose host functions convert through codecs (wasmtime-py's trampoline is
    untouched; only functions added through this class use fnhost's)."""

    @classmethod
    def root_of(cls, linker: Any) -> HostLinkerInstance:
        linker._assert_not_locked()
        root = cls._from_ptr(ffi.wasmtime_component_linker_root(linker.ptr()), linker)
        assert isinstance(root, HostLinkerInstance)
        return root

    def add_instance(self, name: str) -> HostLinkerInstance:
        self._assert_not_locked()
        name_bytes = name.encode("utf-8")
        ptr = ctypes.POINTER(ffi.wasmtime_component_linker_instance_t)()
        err = ffi.wasmtime_component_linker_instance_add_instance(
            self.ptr(), ctypes.create_string_buffer(name_bytes), len(name_bytes), byref(ptr)
        )
        if err:
            raise WasmtimeError._from_ptr(err)
        child = HostLinkerInstance._from_ptr(ptr, self)
        assert isinstance(child, HostLinkerInstance)
        return child

    def add_func(self, name: str, func: HostFunc) -> None:
        global _next_id
        self._assert_not_locked()
        with _host_lock:
            idx = _next_id
            _next_id += 1
            _host_funcs[idx] = _HostEntry(func)
        name_bytes = name.encode("utf-8")
        err = ffi.wasmtime_component_linker_instance_add_func(
            self.ptr(), ctypes.create_string_buffer(name_bytes), len(name_bytes), _trampoline, idx, _finalize
        )
        if err:
            with _host_lock:
                _host_funcs.pop(idx, None)
            raise WasmtimeError._from_ptr(err)


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _trampoline(idx: Any, context: Any, ty_raw: Any, args: Any, nargs: int, results: Any, nresults: int) -> Any:
    def run(store: Any) -> None:
        key = idx or 0
        entry = _host_funcs[key]
        cache: dict[int, Signature] | None = getattr(signatures, "cache", None)
        signature = cache.get(key) if cache is not None else None
        if signature is None:
            with t.FuncType._from_ptr(ty_raw, owner=store) as fty:
                signature = Signature.of(fty)
            if cache is not None:
                cache[key] = signature
        if len(signature.params) != nargs or nresults != (0 if signature.result is None else 1):
            raise TypeError("host function called with a signature it was not prepared for")
        pyargs = [param.lift(args[i]) for i, param in enumerate(signature.params)]
        result = entry.func(store, *pyargs)
        if signature.result is not None:
            signature.result.lower(store, result, results[0])

    return catch_exceptions(context, run)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _finalize(idx: Any) -> None:
    with _host_lock:
        _host_funcs.pop(idx or 0, None)


__all__ = ["Codec", "HostLinkerInstance", "Signature", "call", "codec", "signatures"]
