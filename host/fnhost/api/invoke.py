"""Running functions: direct invoke, function URLs, and the invocation records they leave.

Outcome → HTTP status is defined once here (`OUTCOME_STATUS`) and documented in docs/api.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..chains import CHAIN_DEPTH_HEADER
from ..control.auth import INVOKE, Principal
from ..errors import FnhostError, NotFound
from ..host import Version
from ..namespaces import qualify
from ..runtime.outcomes import InvocationResult, Outcome
from ..stores import InvocationRecord, Page
from ..triggers import AsyncInvocation
from . import events
from .context import READ, ApiContext, blocking, context_of, function_of, namespace_of, require_read
from .errors import InvalidRequest, error_response, request_id_of
from .parsing import chain_depth_of, outcome_of, parse_qualifier, qualifier_of, query_int
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
INVOCATION_HEADERS = ("X-Fnhost-Invocation-Id", "X-Fnhost-Outcome", "X-Fnhost-Version")
_GUEST_HEADERS_DROPPED = frozenset(
    name.lower().encode("latin-1")
    for name in ("content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", *INVOCATION_HEADERS)
)
"""What a guest's response may not set: framing (the server's), and the invocation headers (fnhost's)."""


def invocation_headers(result: InvocationResult) -> dict[str, str]:
    return dict(zip(INVOCATION_HEADERS, (result.invocation_id, result.outcome.value, str(result.version)), strict=True))


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
    name = function_of(request)
    qualifier = qualifier_of(request)
    invocation_type = request.headers.get(events.INVOCATION_TYPE, "RequestResponse")
    if invocation_type.lower() == "event":
        return await events.invoke_async(request, name, qualifier)
    if invocation_type.lower() != "requestresponse":
        raise InvalidRequest(
            f"X-Fnhost-Invocation-Type must be RequestResponse (the default) or Event, not {invocation_type!r}"
        )
    principal = await ctx.authorize(request, INVOKE, name)
    payload = await request.body()
    result = await invoke_event_handler(ctx, request, principal, name, payload, qualifier, chain_depth_of(request))
    if not result.ok:
        return outcome_error(request, result, OUTCOME_STATUS)
    return Response(result.output, media_type="application/octet-stream", headers=invocation_headers(result))


async def invoke_event_handler(
    ctx: ApiContext,
    request: Request,
    principal: Principal,
    name: str,
    payload: bytes,
    qualifier: str | int | None = None,
    chain_depth: int = 0,
) -> InvocationResult:
    """Run function `name`'s event handler on `payload` for a `principal` that may invoke it, through the
    server's invocation pool (its shares and limits): the API's direct invoke and the console's. Deeper
    than the host's chain limit (`fnhost.chains`) is `LoopDetected`, answered 508."""
    await ctx.check(request, principal, INVOKE, name)
    ctx.host.chains.admit(name, chain_depth)  # before the pool: a refused request takes no worker's turn
    call = functools.partial(ctx.host.invoke, name, payload, qualifier=qualifier, chain_depth=chain_depth)
    return await ctx.pool.run(name, call)


CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""What a guest never sees unless its manifest says `[http] forward_credentials = true`: one origin
serves every function, so a browser's cookies and a caller's tokens would reach them all. The
fnhost API key (`authorization` on a private function) is never forwarded."""
HOST_HEADERS = frozenset({CHAIN_DEPTH_HEADER})
"""What a guest never sees: the host reads it (`fnhost.chains`), and sets it on what the guest sends."""


async def function_url(request: Request) -> Response:
    """ANY /fn/{name}[@{alias|version}]/{path} (/ns/{namespace}/fn/...): the HTTP handler of the version
    `live` (or the alias or version named) serves; public functions need no key.

    A URL with a qualifier is public only when both the version it serves and the live version
    are: making a function private closes every URL of it at once, and no alias or old version
    reopens it. The caller is authenticated (private functions) before a byte of the body is read,
    and a guest's error text reaches only callers holding a key that may read the function.

    The invocation runs at the chain depth the request's `fnhost-chain-depth` claims (`fnhost.chains`;
    the guest does not see that header); deeper than the host's limit is 508 Loop Detected.
    """
    ctx = context_of(request)
    name, qualifier = _function_url_target(request)
    path = "/" + request.path_params.get("path", "")
    query = request.scope["query_string"]  # as sent (request.url would rebuild the whole URL to get it)
    if query:
        try:
            path += "?" + query.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                "the query string is not UTF-8; percent-encode its bytes (%FF), as browsers and HTTP clients do"
            ) from None
    try:
        version = await _version_of(ctx, name, qualifier)
        live = version if qualifier is None else await _version_of(ctx, name, None)
    except NotFound:
        await ctx.authorize(request, INVOKE, name)  # no key, no answer on whether a function (or alias) exists
        raise
    public = version.manifest.public and live.manifest.public
    if not public:
        await ctx.authorize(request, INVOKE, name)
    if not version.manifest.forward_credentials:
        hidden = CREDENTIAL_HEADERS | HOST_HEADERS
    else:
        hidden = HOST_HEADERS if public else HOST_HEADERS | {"authorization"}  # private: the fnhost key
    headers = [
        (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.decode("latin-1") not in hidden
    ]
    chain_depth = chain_depth_of(request)
    ctx.host.chains.admit(name, chain_depth)  # before the body and the pool: a refused request costs neither
    body = await request.body() if _may_have_body(request.scope) else b""
    call = functools.partial(
        ctx.host.invoke_http,
        name,
        request.method,
        path,
        headers,
        body,
        qualifier=version.version,
        chain_depth=chain_depth,
    )
    result = await ctx.pool.run(name, call)
    if not result.ok or result.response is None:
        if public and result.outcome is not Outcome.THROTTLED and not await _may_read(request, name):
            return _generic_error(request, result)
        return outcome_error(request, result, FUNCTION_URL_STATUS)
    response = Response(result.response.body, status_code=result.response.status)  # content-length only
    response.raw_headers.extend(
        (header, v.encode("latin-1"))
        for k, v in result.response.headers
        if (header := k.lower().encode("latin-1")) not in _GUEST_HEADERS_DROPPED
    )
    response.raw_headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in invocation_headers(result).items()
    )
    return response


def _may_have_body(scope: Mapping[str, Any]) -> bool:
    """False for an HTTP/1.x request that declares neither a length nor chunks: it has no body (RFC 9112
    §6.3), so a GET skips the body's read (and its timeout scope). HTTP/2 frames a body without them."""
    if scope.get("http_version") not in ("1.1", "1.0"):
        return True
    return any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])


def _function_url_target(request: Request) -> tuple[str, str | int | None]:
    """The store name and qualifier a function URL names: `hello`, `hello@prod`, `hello@3`."""
    raw = request.path_params["name"]
    plain, at, qualifier = raw.partition("@")
    name = qualify(namespace_of(request), plain)
    if not at:
        return name, None
    if not qualifier:
        raise InvalidRequest(f"function URL /fn/{raw[:80]}: name an alias or a version after '@' (/fn/{plain}@prod/)")
    return name, parse_qualifier(qualifier, f"function URL /fn/{raw[:80]}")


async def _version_of(ctx: ApiContext, name: str, qualifier: str | int | None) -> Version:
    version = ctx.host.cached_version(name, qualifier)
    return version if version is not None else await blocking(ctx.host.get_version, name, qualifier)


async def _may_read(request: Request, name: str) -> bool:
    """Whether the caller of a public function holds a key that may read it (quietly: no key is fine)."""
    if "authorization" not in request.headers:
        return False
    ctx = context_of(request)
    try:
        principal = await blocking(ctx.keys.authenticate, request.headers["authorization"])
        require_read(principal, name)
    except FnhostError:
        return False
    return True


def _generic_error(request: Request, result: InvocationResult) -> Response:
    """What an anonymous caller learns of a failed invocation: the outcome and the invocation id."""
    return error_response(
        FUNCTION_URL_STATUS[result.outcome],
        result.outcome.value,
        f"the function failed ({result.outcome.value}); its owner can look up invocation "
        f"{result.invocation_id} (GET /v1/invocations/{result.invocation_id})",
        request_id=request_id_of(request),
        invocation_id=result.invocation_id,
        headers=invocation_headers(result),
    )


async def list_invocations(request: Request) -> Response:
    """GET /v1/functions/{name}/invocations[?limit=50&before=ID&outcome=]: newest first, at most `limit`
    records and 4 MiB (at least one); `next_before`, when set, continues the listing."""
    ctx = context_of(request)
    name = function_of(request)
    principal = await ctx.authorize(request, READ, name)
    limit = query_int(request, "limit", 50, 1, 1000)
    before = request.query_params.get("before") or None
    page = await invocations_page(ctx, request, principal, name, limit, before, outcome_of(request))
    return JSONResponse({"name": name, "invocations": jsonable(page.records), "next_before": page.next_before})


async def invocations_page(
    ctx: ApiContext,
    request: Request,
    principal: Principal,
    name: str,
    limit: int = 50,
    before: str | None = None,
    outcome: str | None = None,
) -> Page:
    """Function `name`'s invocation records, newest first, for a `principal` that may read it (the API
    and the console)."""
    await ctx.check(request, principal, READ, name)
    page = await blocking(ctx.host.invocations.page, name, limit=limit, before=before, outcome=outcome)
    if not page.records:  # nothing recorded: a typo'd name is a 404, not an empty listing (records of a
        await blocking(ctx.host.get_function, name)  # deleted function stay listed until retention)
    return page


async def get_invocation(request: Request) -> Response:
    """GET /v1/invocations/{id}: outcome, metering, REPORT line and logs; for the id of an async
    invoke (202), its status: queued, running, succeeded or failed, attempts, the latest attempt's
    invocation id, output and error."""
    ctx = context_of(request)
    principal = await ctx.authenticate(request)
    found = await invocation_of(ctx, request, principal, request.path_params["id"])
    if isinstance(found, AsyncInvocation):
        return JSONResponse({"async": True, **found.to_dict()})
    return JSONResponse(jsonable(found))


async def invocation_of(
    ctx: ApiContext, request: Request, principal: Principal, invocation_id: str
) -> InvocationRecord | AsyncInvocation:
    """The record of invocation `invocation_id`, or the status of the async invoke of that id, for a
    `principal` that may read its function; to anyone else, `NotFound` as for an id that does not exist."""
    missing = NotFound(f"no invocation {invocation_id!r}; it may have aged out of retention")
    record = await blocking(ctx.host.invocations.get, invocation_id)
    if record is not None:
        function = record.function
    else:
        try:
            accepted = await blocking(ctx.triggers.async_invocations.get, invocation_id)
        except NotFound:
            raise missing from None
        function = accepted.function
    if not principal.sees(function):  # the same answer as for an id that does not exist
        await ctx.audit_denied(request, principal, missing, {"scope": READ, "function": function})
        raise missing
    await ctx.check(request, principal, READ, function)
    return accepted if record is None else record
