"""Calling a component's handler (the WIT world `function`, sdk/wit/fnhost.wit).

Arguments and results convert through the version's `convert.Signature`, read once per version.
"""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime.component import Record, Variant

from . import abi, convert
from .outcomes import GuestFailure, HttpResponse, Outcome, RunResult, check_size, checked_response
from .prepare import Call, Prepared


def call_component(prepared: Prepared, store: wasmtime.Store, instance: Any, call: Call) -> RunResult:
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
    arg: Any
    if call.kind == "http":
        arg = _record(method=call.method, path_with_query=call.path, headers=call.headers, body=call.payload)
    else:
        arg = _component_event(call)
    value = convert.call(func, store, signature, ctx, arg)
    if isinstance(value, str):
        raise GuestFailure(value)
    if call.kind == "http":
        body = value.body
        check_size(len(body), prepared.limits.max_response_bytes)
        response = HttpResponse(value.status, [tuple(h) for h in value.headers], body)
        return RunResult(Outcome.OK, response=checked_response(response))
    output = value.output
    check_size(len(output), prepared.limits.max_response_bytes)
    return RunResult(Outcome.OK, output=output, failed_message_ids=list(getattr(value, "failed-message-ids")))


def _component_event(call: Call) -> Any:
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
    return Variant("invoke", call.payload)


def _record(**fields: Any) -> Record:
    record = Record()
    for key, value in fields.items():
        setattr(record, key.replace("_", "-"), value)
    return record
