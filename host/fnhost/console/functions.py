"""Functions: the list, one function (versions, aliases), deploy, roll back / point / remove an alias,
invoke; invocations (filtered by outcome), one invocation, and the live log tail.

Each handler parses its form, then calls the API layer's function for the operation; those check
the key (`ApiContext.check`) and audit exactly as the JSON API does.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..api import functions as api_functions
from ..api import invoke as api_invoke
from ..api.context import READ, blocking
from ..api.errors import InvalidRequest
from ..api.parsing import outcome_of, query_int
from ..control.auth import DEPLOY, INVOKE
from ..namespaces import qualify, split
from ..runtime.outcomes import Outcome
from ..stores import LIVE
from ..triggers import AsyncInvocation
from .render import Console, ConsoleUser, see_other

MAX_TAIL = 20


def function_url(namespace: str, name: str, page: str = "") -> str:
    """The console page of function `name` (plain) in `namespace`."""
    return f"/console/functions/{quote(name, safe='')}{page}?{urlencode({'ns': namespace})}"


def _function(console: Console, request: Request, user: ConsoleUser) -> tuple[str, str, str]:
    """(namespace, plain name, store name) of the function in the path."""
    namespace = console.namespace_of(request, user)
    plain = request.path_params["name"]
    return namespace, plain, qualify(namespace, plain)


async def _chosen_function(
    console: Console, request: Request, user: ConsoleUser, namespace: str
) -> tuple[list[str], str | None]:
    """The functions this key may read (plain names) and the one `?function=` names (else the first)."""
    await console.ctx.check(request, user.principal, READ, None)
    visible = await api_functions.visible_functions(console.ctx, user.principal, namespace)
    functions = [split(f.name)[1] for f in visible]
    return functions, request.query_params.get("function") or (functions[0] if functions else None)


async def functions_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/functions: the functions of the namespace this key may deploy or invoke."""
    namespace = console.namespace_of(request, user)
    await console.ctx.check(request, user.principal, READ, None)
    functions = await api_functions.visible_functions(console.ctx, user.principal, namespace)
    rows = [
        {"name": split(f.name)[1], "record": f, "live": next((a for a in f.aliases if a.alias == LIVE), None)}
        for f in functions
    ]
    may_deploy = user.principal.allows(DEPLOY, namespace=namespace)
    return console.render(request, "functions.html", user, functions=rows, may_deploy=may_deploy)


async def function_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/functions/{name}: versions, aliases, the forms that change them, recent invocations."""
    _, plain, name = _function(console, request, user)
    await console.ctx.check(request, user.principal, READ, name)
    record = await blocking(console.ctx.host.get_function, name)
    versions = await blocking(console.ctx.host.list_versions, name)
    page = await api_invoke.invocations_page(console.ctx, request, user.principal, name, limit=10)
    live = next((a for a in record.aliases if a.alias == LIVE), None)
    return console.render(
        request,
        "function.html",
        user,
        name=plain,
        record=record,
        versions=sorted(versions, key=lambda v: -v.version),
        live=live,
        invocations=page.records,
        may_deploy=user.principal.allows(DEPLOY, name),
        may_invoke=user.principal.allows(INVOKE, name),
    )


async def deploy(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/functions/deploy: form {name, bundle (a .zip upload)}."""
    namespace = console.namespace_of(request, user)
    form = await console.form(request)
    plain, bundle = form.get("name"), form.get("bundle")
    if not isinstance(plain, str) or not plain.strip():
        raise InvalidRequest("name the function to deploy (the bundle's fnhost.toml `name`)")
    if not isinstance(bundle, UploadFile) or not bundle.filename:
        raise InvalidRequest("choose a bundle to upload: a .zip made by `fnhost build DIR -o bundle.zip`")
    name = qualify(namespace, plain.strip())
    data = await bundle.read()
    await api_functions.deploy_bundle(console.ctx, request, user.principal, name, data)
    return see_other(function_url(namespace, plain.strip()))


async def point_alias(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/functions/{name}/aliases: form {alias, version}; rolling back is `live` → an older one."""
    namespace, plain, name = _function(console, request, user)
    form = await console.form(request)
    alias, raw = form.get("alias"), form.get("version")
    if not isinstance(alias, str) or not alias:
        raise InvalidRequest("name the alias to point (e.g. live, prod)")
    version: object = int(raw) if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 19 else raw
    await api_functions.point_alias(console.ctx, request, user.principal, name, alias, version)
    return see_other(function_url(namespace, plain))


async def remove_alias(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/functions/{name}/aliases/{alias}/remove: remove an alias; for `live`, unpin it."""
    namespace, plain, name = _function(console, request, user)
    await api_functions.remove_alias(console.ctx, request, user.principal, name, request.path_params["alias"])
    return see_other(function_url(namespace, plain))


async def invoke(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/functions/{name}/invoke: form {payload}; shows the result, its REPORT line and logs."""
    _, plain, name = _function(console, request, user)
    payload = (await console.form(request)).get("payload")
    if not isinstance(payload, str):
        raise InvalidRequest("payload must be text (the event, e.g. JSON)")
    result = await api_invoke.invoke_event_handler(console.ctx, request, user.principal, name, payload.encode())
    return console.render(
        request, "invoked.html", user, name=plain, result=result, output=result.output.decode("utf-8", "replace")
    )


async def invocations_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/invocations?function=&outcome=&before=: one function's invocations, newest first."""
    namespace = console.namespace_of(request, user)
    functions, plain = await _chosen_function(console, request, user, namespace)
    outcome = outcome_of(request)
    records, next_before = [], None
    if plain is not None:
        page = await api_invoke.invocations_page(
            console.ctx,
            request,
            user.principal,
            qualify(namespace, plain),
            limit=query_int(request, "limit", 50, 1, 1000),
            before=request.query_params.get("before") or None,
            outcome=outcome,
        )
        records, next_before = page.records, page.next_before
    return console.render(
        request,
        "invocations.html",
        user,
        functions=functions,
        function=plain,
        outcome=outcome,
        outcomes=[o.value for o in Outcome],
        invocations=records,
        next_before=next_before,
    )


async def invocation_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/invocations/{id}: outcome, error, metering, REPORT line and logs (or an async invoke's status)."""
    found = await api_invoke.invocation_of(console.ctx, request, user.principal, request.path_params["id"])
    if isinstance(found, AsyncInvocation):
        return console.render(request, "async_invocation.html", user, event=found, plain=split(found.function)[1])
    return console.render(request, "invocation.html", user, record=found, plain=split(found.function)[1])


async def tail_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/tail?function=: the live log tail (console.js polls `tail_json`)."""
    namespace = console.namespace_of(request, user)
    functions, plain = await _chosen_function(console, request, user, namespace)
    if plain is not None:
        await console.ctx.check(request, user.principal, READ, qualify(namespace, plain))
    return console.render(request, "tail.html", user, functions=functions, function=plain)


async def tail_json(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/tail.json?function=&after=ID: the newest invocations after `after`, oldest first."""
    namespace = console.namespace_of(request, user)
    name = qualify(namespace, request.query_params.get("function", ""))
    after = request.query_params.get("after", "")
    page = await api_invoke.invocations_page(console.ctx, request, user.principal, name, limit=MAX_TAIL)
    fresh = [r for r in reversed(page.records) if r.id > after]
    return JSONResponse(
        {
            "invocations": [
                {"id": r.id, "outcome": r.outcome, "started_at": r.started_at, "logs": r.logs, "error": r.error,
                 "report": r.report}
                for r in fresh
            ]
        }
    )  # fmt: skip
