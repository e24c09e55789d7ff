"""Running functions: direct invoke, function URLs, and the invocation records they leave.

Outcome → HTTP status is defined once here (`OUTCOME_STATUS`) and documented in docs/api.md.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import INVOKE
from ..errors import NotFound
from ..runtime.outcomes import InvocationResult, Outcome
from . import events
from .context import READ, blocking, context_of
from .errors import InvalidRequest, error_response, request_id_of
from .parsing import qualifier_of, query_int
from .serialize import jsonable

OUTCOME_STATUS: dict[Outcome, int] = {
    Outcome.OK: 200,
    # The function failed, not the gateway nor the caller: 502 Bad Gateway, as Lambda/API Gateway do.
    Outcome.GUEST_ERROR: 502,
    Outcome.GUEST_TRAP: 502,
    # Resource limits are the function's own configuration (fnhost.toml), so also "the upstream failed".
    Outcome.FUEL_EXHAUSTED: 502,
    Outcome.MEMORY_LIMIT: 502,
    # A capability outside the manifest's grants: the function's misconfiguration, not the caller's
    # lack of rights (that is 403 from the API key check, before anything runs).
    Outcome.DENIED: 502,
    Outcome.TIMEOUT: 504,
    Outcome.THROTTLED: 429,
}
FUNCTION_URL_STATUS: dict[Outcome, int] = {
    **OUTCOME_STATUS,
    # The WIT contract: an `err` from handle-http is reported to the HTTP caller as a 500.
    Outcome.GUEST_ERROR: 500,
}
# Headers the server computes itself; a guest's own values would contradict the body we send.
_RESPONSE_HEADERS_DROPPED = {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}


def invocation_headers(result: InvocationResult) -> dict[str, str]:
    return {
        "X-Fnhost-Invocation-Id": result.invocation_id,
        "X-Fnhost-Outcome": result.outcome.value,
        "X-Fnhost-Version": str(result.version),
    }


def outcome_error(request: Request, result: InvocationResult, statuses: dict[Outcome, int]) -> Response:
    return error_response(
        statuses[result.outcome],
        result.outcome.value,
        result.error or result.outcome.value,
        request_id=request_id_of(request),
        invocation_id=result.invocation_id,
        headers=invocation_headers(result),
    )


async def invoke(request: Request) -> Response:
    """POST /v1/functions/{name}/invoke[?qualifier=]: body = event payload, response = output."""
    ctx = context_of(request)
    name = request.path_params["name"]
    qualifier = qualifier_of(request)
    invocation_type = request.headers.get(events.INVOCATION_TYPE, "RequestResponse")
    if invocation_type.lower() == "event":
        return await events.invoke_async(request, name, qualifier)
    if invocation_type.lower() != "requestresponse":
        raise InvalidRequest(
            f"X-Fnhost-Invocation-Type must be RequestResponse (the default) or Event, not {invocation_type!r}"
        )
    await ctx.authorize(request, INVOKE, name)
    payload = await request.body()
    call = functools.partial(ctx.host.invoke, name, payload, qualifier=qualifier)
    result = await ctx.pool.run(name, call)
    if not result.ok:
        return outcome_error(request, result, OUTCOME_STATUS)
    return Response(result.output, media_type="application/octet-stream", headers=invocation_headers(result))


async def function_url(request: Request) -> Response:
    """ANY /fn/{name}/{path}: the function's HTTP handler; public functions need no key."""
    ctx = context_of(request)
    name = request.path_params["name"]
    path = "/" + request.path_params.get("path", "")
    if request.url.query:
        path += "?" + request.url.query
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    body = await request.body()

    def run_if_public() -> InvocationResult | None:
        # One worker-thread hop for a public function; the version checked is the version run.
        version = ctx.host.get_version(name)
        if not version.manifest.public:
            return None
        return ctx.host.invoke_http(name, request.method, path, headers, body, qualifier=version.version)

    try:
        result = await ctx.pool.run(name, run_if_public)
    except NotFound:
        await ctx.authorize(request, INVOKE, name)  # no key, no answer on whether a function exists
        raise
    if result is None:
        await ctx.authorize(request, INVOKE, name)
        # The fnhost API key is the caller's credential for fnhost, never the function's to see.
        private = [(k, v) for k, v in headers if k.lower() != "authorization"]
        call = functools.partial(ctx.host.invoke_http, name, request.method, path, private, body)
        result = await ctx.pool.run(name, call)
    if not result.ok or result.response is None:
        return outcome_error(request, result, FUNCTION_URL_STATUS)
    response = Response(result.response.body, status_code=result.response.status)
    response.raw_headers = [h for h in response.raw_headers if h[0] != b"content-type"]
    response.raw_headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in result.response.headers
        if k.lower() not in _RESPONSE_HEADERS_DROPPED
    )
    for k, v in invocation_headers(result).items():
        response.headers[k] = v
    return response


async def list_invocations(request: Request) -> Response:
    """GET /v1/functions/{name}/invocations[?limit=50]: newest first."""
    ctx = context_of(request)
    name = request.path_params["name"]
    await ctx.authorize(request, READ, name)
    limit = query_int(request, "limit", 50, 1, 1000)
    records = await blocking(ctx.host.invocations.list, name, limit=limit)
    return JSONResponse({"name": name, "invocations": jsonable(records)})


async def get_invocation(request: Request) -> Response:
    """GET /v1/invocations/{id}: outcome, metering, REPORT line and logs; for the id of an async
    invoke (202), its status: queued, running, succeeded or failed, attempts, the latest attempt's
    invocation id, output and error."""
    ctx = context_of(request)
    principal = await ctx.authenticate(request)
    invocation_id = request.path_params["id"]
    record = await blocking(ctx.host.invocations.get, invocation_id)
    if record is None:
        try:
            accepted = await blocking(ctx.triggers.async_invocations.get, invocation_id)
        except NotFound:
            raise NotFound(f"no invocation {invocation_id!r}; it may have aged out of retention") from None
        await ctx.check(request, principal, READ, accepted.function)
        return JSONResponse({"async": True, **accepted.to_dict()})
    await ctx.check(request, principal, READ, record.function)
    return JSONResponse(jsonable(record))
