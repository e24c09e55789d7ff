"""The Rust, Go and C SDKs implement the core-module ABI of docs/abi.md.

Each guest is built with its real toolchain and run by raw wasmtime-py, with the host functions of
import module `fnhost@0.2.0` (the SDKs' contract version) defined here from the ABI text alone, so
the SDKs are checked independently of the host. JSON outputs are compared as JSON values
(conftest.same_json: the Go SDK writes them with encoding/json, the Rust and C SDKs as Python's
json.dumps); other outputs as bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import wasmtime
from conftest import build_or_skip, same_json

ValType = wasmtime.ValType
ROOT = Path(__file__).resolve().parents[1]
GUESTS = ROOT / "guests"
HELLO = ["rust", "go", "c"]
COUNTER = ["rust", "go", "c"]
CHAOS = ["rust", "go", "c"]

pytestmark = pytest.mark.slow


def built(lang: str, name: str) -> Path:
    """The guest's wasm (conftest.missing_toolchain decides when its toolchain is absent)."""
    return build_or_skip(GUESTS / lang / name).wasm_path


# --- encoding (docs/abi.md) ---------------------------------------------------------------------


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def blob(b: bytes | str) -> bytes:
    data = b.encode() if isinstance(b, str) else b
    return u32(len(data)) + data


def context(memory_mb: int = 128) -> bytes:
    return blob("inv-1") + blob("hello") + blob("1") + struct.pack("<QI", 4_000_000_000_000, memory_mb)


def headers(items: list[tuple[str, str]]) -> bytes:
    return u32(len(items)) + b"".join(blob(k) + blob(v) for k, v in items)


def http_input(method: str, path: str, hdrs: list[tuple[str, str]], body: bytes) -> bytes:
    return context() + blob(method) + blob(path) + headers(hdrs) + blob(body)


def invoke_input(payload: bytes) -> bytes:
    return context() + b"\x00" + blob(payload)


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        assert len(out) == n, "output truncated"
        self.pos += n
        return out

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def blob(self) -> bytes:
        return self.take(self.u32())


# --- a minimal host ---------------------------------------------------------------------------

ERROR_CODES = {"denied": 1, "not-found": 2, "invalid": 6}


@dataclass
class FakeHost:
    buckets: set[str] = field(default_factory=lambda: {"counters"})
    kv: dict[tuple[str, str], bytes] = field(default_factory=dict)
    logs: list[tuple[int, str]] = field(default_factory=list)
    pending: bytes = b""

    def fail(self, kind: str, message: str) -> int:
        self.pending = message.encode()
        return -ERROR_CODES[kind]

    def ok(self, value: bytes) -> int:
        self.pending = value
        return len(value)

    def kv_get(self, bucket: str, key: str) -> int:
        if bucket not in self.buckets:
            return self.fail("denied", f"kv bucket {bucket!r} is not granted")
        if (bucket, key) not in self.kv:
            return self.fail("not-found", "")
        return self.ok(self.kv[bucket, key])

    def kv_set(self, bucket: str, key: str, value: bytes) -> int:
        if bucket not in self.buckets:
            return self.fail("denied", f"kv bucket {bucket!r} is not granted")
        self.kv[bucket, key] = value
        self.pending = b""
        return 0

    def kv_increment(self, bucket: str, key: str, delta: int) -> int:
        if bucket not in self.buckets:
            return self.fail("denied", f"kv bucket {bucket!r} is not granted")
        value = int(self.kv.get((bucket, key), b"0")) + delta
        self.kv[bucket, key] = str(value).encode()
        return self.ok(struct.pack("<q", value))


def linker_for(engine: wasmtime.Engine, host: FakeHost) -> wasmtime.Linker:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

    def mem(caller: wasmtime.Caller) -> Callable[[int, int], bytes]:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return lambda ptr, n: bytes(memory.read(caller, ptr, ptr + n))

    def define(name: str, params: list[ValType], results: list[ValType], fn: Callable) -> None:
        linker.define_func("fnhost@0.2.0", name, wasmtime.FuncType(params, results), fn, access_caller=True)

    def kv_get(c: wasmtime.Caller, bp: int, bl: int, kp: int, kl: int) -> int:
        read = mem(c)
        return host.kv_get(read(bp, bl).decode(), read(kp, kl).decode())

    def kv_set(c: wasmtime.Caller, bp: int, bl: int, kp: int, kl: int, vp: int, vl: int) -> int:
        read = mem(c)
        return host.kv_set(read(bp, bl).decode(), read(kp, kl).decode(), read(vp, vl))

    def kv_increment(c: wasmtime.Caller, bp: int, bl: int, kp: int, kl: int, delta: int) -> int:
        read = mem(c)
        return host.kv_increment(read(bp, bl).decode(), read(kp, kl).decode(), delta)

    def unsupported(c: wasmtime.Caller, *args: int) -> int:
        return host.fail("invalid", "not supported by this test host")

    def log_write(c: wasmtime.Caller, level: int, p: int, n: int) -> None:
        host.logs.append((level, mem(c)(p, n).decode()))

    def result_len(c: wasmtime.Caller) -> int:
        return len(host.pending)

    def result_read(c: wasmtime.Caller, dst: int) -> int:
        memory = c["memory"]
        assert isinstance(memory, wasmtime.Memory)
        data, host.pending = host.pending, b""
        memory.write(c, data, dst)
        return len(data)

    define("kv_get", [i32] * 4, [i64], kv_get)
    define("kv_set", [i32] * 6, [i64], kv_set)
    define("kv_delete", [i32] * 4, [i64], unsupported)
    define("kv_list_keys", [i32] * 5, [i64], unsupported)
    define("kv_increment", [i32] * 4 + [i64], [i64], kv_increment)
    define("kv_compare_and_swap", [i32] * 9, [i64], unsupported)
    define("kv_set_with_ttl", [i32] * 6 + [i64], [i64], unsupported)
    define("kv_get_many", [i32] * 4, [i64], unsupported)
    define("kv_set_many", [i32] * 4, [i64], unsupported)
    define("queue_publish", [i32] * 4, [i64], unsupported)
    define("secrets_get", [i32] * 2, [i64], unsupported)
    # blobs and outbound HTTP (docs/abi.md, 0.2.0): imported by guests that use them, not exercised here
    define("blobs_open_write", [i32] * 6, [i64], unsupported)
    define("blobs_write", [i32] * 3, [i64], unsupported)
    for name in ("blobs_finish", "blobs_abort", "blobs_close_read"):
        define(name, [i32], [i64], unsupported)
    define("blobs_open_read", [i32] * 4, [i64], unsupported)
    define("blobs_read", [i32] * 2, [i64], unsupported)
    define("blobs_stat", [i32] * 4, [i64], unsupported)
    define("blobs_list_keys", [i32] * 7, [i64], unsupported)
    define("blobs_delete", [i32] * 4, [i64], unsupported)
    define("outbound_http_request", [i32] * 10, [i64], unsupported)
    define("log_write", [i32] * 3, [], log_write)
    define("result_len", [], [i32], result_len)
    define("result_read", [i32], [i32], result_read)
    return linker


class Guest:
    """One instance of a guest module, called the way docs/abi.md says the host calls it."""

    def __init__(self, wasm: Path, host: FakeHost | None = None) -> None:
        self.host = host or FakeHost()
        engine = wasmtime.Engine()
        self.module = wasmtime.Module.from_file(engine, str(wasm))
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.instance = linker_for(engine, self.host).instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)
        if "_initialize" in self.exports:
            self.func("_initialize")()

    def func(self, name: str) -> Callable[..., object]:
        f = self.exports[name]
        assert isinstance(f, wasmtime.Func)
        return lambda *args: f(self.store, *args)

    def call(self, handler: str, data: bytes) -> tuple[int, Reader]:
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        ptr = self.func("fnhost_alloc")(len(data))
        assert isinstance(ptr, int) and ptr != 0
        memory.write(self.store, data, ptr)
        packed = self.func(handler)(ptr, len(data))
        assert isinstance(packed, int)
        packed &= (1 << 64) - 1
        out_ptr, out_len = packed >> 32, packed & 0xFFFFFFFF
        out = Reader(bytes(memory.read(self.store, out_ptr, out_ptr + out_len)))
        return out.take(1)[0], out

    def event(self, payload: bytes) -> bytes:
        tag, out = self.call("fnhost_handle_event", invoke_input(payload))
        assert tag == 0, out.data[1:].decode()
        output = out.blob()
        assert out.u32() == 0  # no failed message ids
        assert out.pos == len(out.data)
        return output

    def http(
        self, method: str, path: str, hdrs: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        tag, out = self.call("fnhost_handle_http", http_input(method, path, hdrs, body))
        assert tag == 0, out.data[1:].decode()
        status = out.u16()
        hs = [(out.blob().decode(), out.blob().decode()) for _ in range(out.u32())]
        body = out.blob()
        assert out.pos == len(out.data)
        return status, hs, body


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", HELLO)
def test_hello_exports(lang: str) -> None:
    guest = Guest(built(lang, "hello"))
    names = {e.name for e in guest.module.exports}
    assert {"memory", "fnhost_alloc", "fnhost_handle_http", "fnhost_handle_event"} <= names
    imports = {(i.module, i.name) for i in guest.module.imports}
    assert {m for m, _ in imports} <= {"fnhost", "wasi_snapshot_preview1"}


@pytest.mark.parametrize("lang", HELLO)
def test_hello_event(lang: str) -> None:
    guest = Guest(built(lang, "hello"))
    same_json(guest.event(b'{"name":"x"}'), {"message": "Hello, x!"})
    same_json(guest.event(b'{"name": "\xc3\xa9\\n<&>"}'), {"message": "Hello, \u00e9\n<&>!"})
    assert guest.event(b"not json \xff") == b"not json \xff"
    assert guest.event(b'{"name": 3}') == b'{"name": 3}'
    assert guest.event(b"") == b""


@pytest.mark.parametrize("lang", HELLO)
def test_hello_http(lang: str) -> None:
    guest = Guest(built(lang, "hello"))
    status, hs, body = guest.http("GET", "/hello?name=x%21&name=y", [("accept", "*/*")])
    assert status == 200
    same_json(body, {"message": "Hello, x!!"})
    assert ("content-type", "application/json") in hs
    big = bytes(range(256)) * 4096
    status, hs, body = guest.http("POST", "/echo", [("content-type", "image/png")], big)
    assert (status, hs, body) == (200, [("content-type", "image/png")], big)
    status, hs, body = guest.http("PUT", "/a/b?x=1&y&x=2", [("user-agent", "t/1")], b"abc")
    assert status == 200
    same_json(
        body,
        {
            "method": "PUT",
            "path": "/a/b",
            "query": {"x": "1", "y": ""},
            "user_agent": "t/1",
            "body_length": 3,
            "function": "hello",
            "version": "1",
        },
    )


@pytest.mark.parametrize("lang", HELLO)
def test_hello_many_calls_one_instance(lang: str) -> None:
    """Buffers are freed or reused: one instance serves many calls (instance_reuse)."""
    guest = Guest(built(lang, "hello"))
    for i in range(200):
        same_json(guest.event(b'{"name":"%d"}' % i), {"message": f"Hello, {i}!"})


@pytest.mark.parametrize("lang", COUNTER)
def test_counter(lang: str) -> None:
    guest = Guest(built(lang, "counter"))
    incr = b'{"op":"incr","key":"k"}'
    same_json(guest.event(incr), {"key": "k", "value": 1})
    same_json(guest.event(incr), {"key": "k", "value": 2})
    assert guest.host.kv["counters", "k"] == b"2"
    guest.host.buckets.clear()
    out = json.loads(guest.event(incr))
    assert out["error"] == "denied"


@pytest.mark.parametrize("lang", CHAOS)
def test_chaos(lang: str) -> None:
    wasm = built(lang, "chaos")
    assert Guest(wasm).event(b"ok") == b"ok"
    with pytest.raises(wasmtime.Trap):
        Guest(wasm).event(b"trap")
    same_json(Guest(wasm).event(b"alloc:8"), {"allocated_mb": 8})
    same_json(Guest(wasm).event(b"spin:1000"), {"spun": 1000})


GO_JSON_GUEST = """package main

import (
	"math"

	"fnhost"
)

type inner struct {
	B int    `json:"b"`
	A string `json:"a"`
}

func init() {
	fnhost.HandleHTTP(func(ctx *fnhost.Context, req *fnhost.Request) (*fnhost.Response, error) {
		switch req.Path {
		case "/nan":
			return fnhost.JSON(math.NaN()).WithStatus(201), nil
		case "/raw":
			return fnhost.JSON([]byte(`{"z": 1}`)), nil
		}
		obj := fnhost.NewObject().Str("z", "<&>\\u00e9\\n").Int("y", -1).Bool("x", true).Null("w").
			Strings("v", nil).Raw("u", []byte(" [1, 2] ")).Any("t", inner{2, "s"})
		return fnhost.JSON(obj), nil
	})
	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		switch string(ev.Payload) {
		case "chan":
			return fnhost.OutputJSON(map[string]any{"c": make(chan int)}), nil
		case "badraw":
			return fnhost.OutputJSON(fnhost.NewObject().Raw("r", []byte("{nope"))), nil
		}
		return fnhost.OutputJSON(map[string]any{"b": 1, "a": []int{}}), nil
	})
}

func main() {}
"""


def test_go_sdk_writes_json_with_encoding_json(tmp_path: Path) -> None:
    """fnhost.JSON / OutputJSON / Object encode with encoding/json; an encoding error is the failure."""
    (tmp_path / "fnhost.toml").write_text('name = "gojson"\n\n[build]\nlanguage = "go"\n')
    (tmp_path / "go.mod").write_text("module gojson\n\ngo 1.24\n\nrequire fnhost v0.0.0\n")
    (tmp_path / "main.go").write_text(GO_JSON_GUEST)
    guest = Guest(build_or_skip(tmp_path).wasm_path)
    # Object keeps insertion order; encoding/json writes the values (UTF-8, no HTML escaping, Raw compacted).
    status, hs, body = guest.http("GET", "/", [])
    assert (status, hs) == (200, [("content-type", "application/json")])
    assert body == '{"z":"<&>\u00e9\\n","y":-1,"x":true,"w":null,"v":[],"u":[1,2],"t":{"b":2,"a":"s"}}'.encode()
    assert guest.http("GET", "/raw", [])[2] == b'{"z": 1}'  # []byte is JSON already: sent as is
    assert guest.event(b"") == b'{"a":[],"b":1}'  # a map: keys sorted
    for handler, data, words in [
        ("fnhost_handle_http", http_input("GET", "/nan", [], b""), ["fnhost.JSON: ", "unsupported value: NaN"]),
        ("fnhost_handle_event", invoke_input(b"chan"), ["fnhost.OutputJSON: ", "unsupported type: chan int"]),
        ("fnhost_handle_event", invoke_input(b"badraw"), ['fnhost.Object field "r"', "invalid character"]),
    ]:
        tag, out = guest.call(handler, data)  # tag 1: the function failed, with this message
        assert tag == 1 and all(w in out.data[1:].decode() for w in words), out.data
