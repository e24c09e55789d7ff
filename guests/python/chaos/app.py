"""Chaos: a test guest that misbehaves on command, to exercise the host's limits and sandbox.

The invoke payload is one command (text):

    ok           return "ok"
    loop         spin forever (fuel or the deadline stops it)
    spin:N       burn CPU for N loop iterations, then return {"spun": N}
    sleep:MS     sleep MS milliseconds of wall-clock time (the deadline stops it, not fuel)
    alloc:MB     allocate and touch MB MiB; over the memory cap the allocation fails and traps
    recurse      unbounded Python recursion with the recursion limit lifted: the wasm call stack
                 overflows ("call stack exhausted" trap)
    stdout:N     write N bytes to stdout
    mixed        print "a" to stdout, log "b" through the host, "c" to stderr, then "d" to stdout
    big:N        return N bytes (the SDK hands an output this large to the host outside the record)
    announce:N:M announce an N-byte output on stdout (fnhost:function/body) and write M bytes there
    trap         os.abort(): a wasm `unreachable` trap
    exit:N       os._exit(N): the instance exits with status N
    raise        raise an exception: the function's error (outcome GuestError)
    env          the environment as JSON: only the manifest's [env]
    fs           try to list '/', read /etc/passwd and write into /fnhost; says what happened
"""

import os
import sys
import time
from collections.abc import Callable

from fnhost_sdk import App, Context, Event, Invoke, log
from wit_world.imports import body

app = App()


@app.event
def on_event(event: Event, ctx: Context) -> str | dict[str, object]:
    if not isinstance(event, Invoke):
        return {"ignored": type(event).__name__}
    command, _, arg = event.text().strip().partition(":")
    if command == "ok":
        return "ok"
    if command == "loop":
        while True:
            pass
    if command == "spin":
        total = 0
        for i in range(int(arg)):
            total += i
        return {"spun": int(arg)}
    if command == "sleep":
        time.sleep(int(arg) / 1000)
        return {"slept_ms": int(arg)}
    if command == "alloc":
        block = bytearray(int(arg) * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page
            block[i] = 1
        return {"allocated_mb": int(arg)}
    if command == "recurse":
        sys.setrecursionlimit(1_000_000_000)  # past CPython's own guard, down to the wasm stack

        def deeper(n: int) -> int:
            return deeper(n + 1) + 1

        return {"depth": deeper(0)}
    if command == "stdout":
        sys.stdout.write("x" * int(arg))
        sys.stdout.flush()
        return {"printed": int(arg)}
    if command == "mixed":  # the log keeps this order, whichever way stdout reaches the host
        print("a", flush=True)
        log.info("b")
        print("c", file=sys.stderr, flush=True)
        print("d", flush=True)
        return "mixed"
    if command == "big":
        return b"x" * int(arg)
    if command == "announce":
        announced, written = (int(n) for n in arg.split(":"))
        body.set_output_stdout(announced)
        data, done = memoryview(b"y" * written), 0
        while done < written:  # past the announced length, as a hostile guest would
            done += os.write(1, data[done:])
        return b""
    if command == "trap":
        os.abort()
    if command == "exit":
        os._exit(int(arg or 1))
    if command == "raise":
        raise RuntimeError("chaos: raised on purpose")
    if command == "env":
        return dict(os.environ)
    if command == "fs":
        return {
            "listdir": _attempt(lambda: os.listdir("/")),
            "passwd": _attempt(lambda: open("/etc/passwd").read()),
            "write": _attempt(lambda: open("/fnhost/x", "wb").write(b"x")),  # the input directory is read-only
        }
    raise ValueError(f"unknown chaos command {command!r} (see the docstring of guests/python/chaos/app.py)")


def _attempt(action: Callable[[], object]) -> dict[str, object]:
    try:
        return {"ok": True, "result": action()}
    except OSError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


WitWorld = app.world()
