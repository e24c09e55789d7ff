"""Calling a component's handler (the WIT world `function`, sdk/wit/fnhost.wit).

Arguments and results convert through the version's `convert.Signature`, read once per version.
A component that imports `fnhost:function/body` gets an input over `body.INLINE_MAX` bytes outside
the record, and may hand its output back outside it (capabilities/body.py).
"""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime.component import Record, Variant

from ..capabilities.body import INLINE_MAX
from ..capabilities.state import CallState, OutputSink
from . import abi, convert
from .outcomes import GuestFailure, HttpResponse, Outcome, RunResult, check_size, checked_response
from .prepare import Call, Prepared


def call_component(prepared: Prepared, store: wasmtime.Store, instance: Any, call: Call, state: CallState) -> RunResult:
    func = instance.get_func(store, prepared.exports[call.kind])
    signature = prepared.signatures.get(call.kind)
    if signature is None:
        signature = prepared.signatures[call.kind] = convert.Signature.of(func.type(store))
    ctx = _record(
        invocation_id=call.ctx.invocation_id,
        function_name=call.ctx.function_name,
        function_version=call.ctx.function_version,
        deadline_unix_ms=call.ctx.deadline_unix_ms,
        memory_limit_mb=call.ctx.memory_limit_mb,
    )
    payload = call.payload
    state.max_output_bytes = prepared.limits.max_response_bytes
    if prepared.takes_bodies and len(payload) > INLINE_MAX and (call.kind == "http" or call.event is None):
        state.input, payload = payload, b""
    arg: Any
    if call.kind == "http":
        arg = _record(method=call.method, path_with_query=call.path, headers=call.headers, body=payload)
    else:
        arg = _component_event(call, payload)
    value = convert.call(func, store, signature, ctx, arg)
    if isinstance(value, str):
        raise GuestFailure(value)
    if call.kind == "http":
        body = _output(value.body, state)
        check_size(len(body), prepared.limits.max_response_bytes)
        response = HttpResponse(value.status, [tuple(h) for h in value.headers], body)
        return RunResult(Outcome.OK, response=checked_response(response))
    output = _output(value.output, state)
    check_size(len(output), prepared.limits.max_response_bytes)
    return RunResult(Outcome.OK, output=output, failed_message_ids=list(getattr(value, "failed-message-ids")))


def _output(inline: bytes, state: CallState) -> bytes:
    """The record's output, or the one set through `fnhost:function/body` (then the record's must be empty)."""
    if state.logs.before_line is not None:  # a StdoutPipe: what the guest wrote before it returned, read
        state.logs.before_line()
    output = state.output
    if output is None:
        return inline
    if inline:
        raise GuestFailure("the function set its output through fnhost:function/body and returned one in the record")
    if isinstance(output, OutputSink):
        try:
            return output.complete()
        except ValueError as e:
            raise GuestFailure(str(e)) from None
    return output


def _component_event(call: Call, payload: bytes) -> Any:
    """The WIT `event` variant, tagged: a guest built before the `blob` case has an untagged event
    type (its cases differ by Python type), one built after a tagged one; `convert` lowers a
    `Variant` into either."""
    event = call.event
    if isinstance(event, abi.QueueBatch):
        batch = [_record(id=m.id, queue=m.queue, body=m.body, receive_count=m.receive_count) for m in event.messages]
        return Variant("queue-batch", batch)
    if isinstance(event, abi.ScheduleTick):
        return Variant("schedule", _record(schedule=event.schedule, scheduled_unix_ms=event.scheduled_unix_ms))
    if isinstance(event, abi.BlobEvent):
        fields = {k: getattr(event, k) for k in ("bucket", "key", "event", "size", "sha256", "receive_count")}
        return Variant("blob", _record(**fields))
    return Variant("invoke", payload)


def _record(**fields: Any) -> Record:
    record = Record()
    for key, value in fields.items():
        setattr(record, key.replace("_", "-"), value)
    return record
