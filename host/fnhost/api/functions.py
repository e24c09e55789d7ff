"""Functions: deploy a bundle, list, describe, list versions, delete, point an alias."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import DEPLOY, INVOKE, Principal
from ..host import Version
from ..names import ALIAS, FUNCTION
from ..namespaces import namespace_of as namespace_of_function
from ..namespaces import qualify, split
from ..stores import LIVE, FunctionRecord
from .context import READ, ApiContext, blocking, context_of, function_of, namespace_of
from .errors import InvalidRequest, request_id_of
from .parsing import INT64_MAX, json_object, query_bool
from .serialize import jsonable


async def deploy(request: Request) -> Response:
    """PUT /v1/functions/{name}[?live=false]: body = bundle zip. 201 new version, 200 the same bundle
    again. `live=false` records the version without moving `live` (POST /v1/releases moves it)."""
    ctx = context_of(request)
    name = function_of(request)
    ctx.writable("deploying")
    go_live = query_bool(request, "live", True)
    principal = await ctx.authorize(request, DEPLOY, name)  # before a byte of the body is read
    version = await deploy_bundle(ctx, request, principal, name, await request.body(), go_live=go_live)
    live = next((a.version for a in (await blocking(ctx.host.get_function, name)).aliases if a.alias == LIVE), None)
    body = {
        "name": version.name,
        "version": version.version,
        "sha256": version.sha256,
        "created": version.created,
        "created_at": version.created_at,
        # not this version when `live` is pinned (see DELETE .../aliases/live) or with live=false; None: no
        # version of the function is live yet (its first deploy with live=false)
        "live_version": live,
    }
    return JSONResponse(body, status_code=201 if version.created else 200)


async def deploy_bundle(
    ctx: ApiContext, request: Request, principal: Principal, name: str, data: bytes, *, go_live: bool = True
) -> Version:
    """Deploy bundle zip `data` as function `name` (a store name) for `principal`: what the API's deploy
    and the console's upload both run (the one pipeline, fnhost.control.deploys: bundle, signature,
    name, grants, compile, audit). `go_live=False`: `live` does not move (POST /v1/releases moves it)."""
    ctx.writable("deploying")
    await ctx.check(request, principal, DEPLOY, name)
    deployed = await blocking(
        ctx.deployer.deploy_bundle, data, principal, name=name, request_id=request_id_of(request), go_live=go_live
    )
    return deployed.version


async def list_functions(request: Request) -> Response:
    """GET /v1/functions: the functions of the namespace this key may deploy or invoke."""
    ctx = context_of(request)
    namespace = namespace_of(request)
    principal = await ctx.authorize(request, READ)
    return JSONResponse({"functions": jsonable(await visible_functions(ctx, principal, namespace))})


async def visible_functions(ctx: ApiContext, principal: Principal, namespace: str) -> list[FunctionRecord]:
    """The functions of `namespace` that `principal` may deploy or invoke (the API and the console list these)."""
    return [
        f
        for f in await blocking(ctx.host.list_functions)
        if namespace_of_function(f.name) == namespace
        and (principal.allows(DEPLOY, f.name) or principal.allows(INVOKE, f.name))
    ]


async def get_function(request: Request) -> Response:
    """GET /v1/functions/{name}."""
    ctx = context_of(request)
    name = function_of(request)
    await ctx.authorize(request, READ, name)
    return JSONResponse(jsonable(await blocking(ctx.host.get_function, name)))


async def list_versions(request: Request) -> Response:
    """GET /v1/functions/{name}/versions."""
    ctx = context_of(request)
    name = function_of(request)
    await ctx.authorize(request, READ, name)
    versions = await blocking(ctx.host.list_versions, name)
    return JSONResponse({"name": name, "versions": jsonable(versions)})


async def delete_function(request: Request) -> Response:
    """DELETE /v1/functions/{name}: every version, alias and unreferenced compiled artifact."""
    ctx = context_of(request)
    name = function_of(request)
    ctx.writable("deleting functions")
    principal = await ctx.authorize(request, DEPLOY, name)
    async with ctx.audited(request, "function.delete", name, principal):
        await blocking(ctx.host.delete_function, name)
    return JSONResponse({"name": name, "deleted": True})


async def delete_alias(request: Request) -> Response:
    """DELETE /v1/functions/{name}/aliases/{alias}: remove an alias; for `live`, unpin it."""
    ctx = context_of(request)
    name, alias = function_of(request), request.path_params["alias"]
    ctx.writable("removing aliases")
    principal = await ctx.authorize(request, DEPLOY, name)
    live = await remove_alias(ctx, request, principal, name, alias)
    if live is not None:
        return JSONResponse({"name": name, "alias": alias, "version": live, "pinned": False})
    return JSONResponse({"name": name, "alias": alias, "deleted": True})


async def remove_alias(ctx: ApiContext, request: Request, principal: Principal, name: str, alias: str) -> int | None:
    """Remove `alias` of function `name` for `principal`, audited; for `live`, unpin it and return the
    version it follows now (the API and the console)."""
    ctx.writable("removing aliases")
    await ctx.check(request, principal, DEPLOY, name)
    async with ctx.audited(request, "function.alias.delete", f"{name}:{alias}", principal):
        await blocking(ctx.host.delete_alias, name, alias, principal=principal)
    if alias == LIVE:
        return (await blocking(ctx.host.get_version, name)).version
    return None


async def set_alias(request: Request) -> Response:
    """PUT /v1/functions/{name}/aliases/{alias}: body {"version": N}."""
    ctx = context_of(request)
    name, alias = function_of(request), request.path_params["alias"]
    ctx.writable("setting aliases")
    principal = await ctx.authorize(request, DEPLOY, name)
    version = await point_alias(ctx, request, principal, name, alias, (await json_object(request)).get("version"))
    return JSONResponse({"name": name, "alias": alias, "version": version})


async def point_alias(
    ctx: ApiContext, request: Request, principal: Principal, name: str, alias: str, version: object
) -> int:
    """Point `alias` of function `name` at `version` for `principal`, audited (rolling back is pointing
    `live` at an older version): the API and the console."""
    ctx.writable("setting aliases")
    await ctx.check(request, principal, DEPLOY, name)
    async with ctx.audited(request, "function.alias", f"{name}:{alias}", principal) as note:
        note.detail["version"] = version
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidRequest(f'"version" must be an integer version number, got {version!r}')
        await blocking(ctx.host.set_alias, name, alias, version, principal=principal)
    return version


MAX_RELEASE_MOVES = 100


async def release(request: Request) -> Response:
    """POST /v1/releases: body {"aliases": [{"function": F, "alias": A, "version": N}, ...]}: every
    alias moves, in one transaction, or none does (`Host.release`). `live` keeps following later
    deploys; a pinned `live` refuses the release (409)."""
    ctx = context_of(request)
    ctx.writable("releasing")
    principal = await ctx.authenticate(request)
    entries = (await json_object(request)).get("aliases")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_RELEASE_MOVES:
        raise InvalidRequest(
            f'"aliases" must be a list of 1..{MAX_RELEASE_MOVES} objects {{"function": F, "alias": A, "version": N}}'
        )
    namespace = namespace_of(request)
    moves: list[tuple[str, str, int]] = []
    for i, entry in enumerate(entries):
        where = f"aliases[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"function", "alias", "version"}:
            raise InvalidRequest(f'{where}: must be an object with exactly "function", "alias" and "version"')
        function, alias, version = entry["function"], entry["alias"], entry["version"]
        if not FUNCTION.matches(function):
            raise InvalidRequest(f"{where}.function: {str(function)[:80]!r} is not a function name ({FUNCTION.rule})")
        if not ALIAS.matches(alias):
            raise InvalidRequest(f"{where}.alias: {str(alias)[:80]!r} is not an alias name ({ALIAS.rule})")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= INT64_MAX:
            raise InvalidRequest(f"{where}.version: must be a version number, got {version!r}")
        if any(m[:2] == (qualify(namespace, function), alias) for m in moves):
            raise InvalidRequest(f"{where}: {function}:{alias} is named twice")
        moves.append((qualify(namespace, function), alias, version))
    for function in sorted({m[0] for m in moves}):  # every function's deploy right, before anything moves
        await ctx.check(request, principal, DEPLOY, function)
    target = ", ".join(f"{split(f)[1]}:{a}" for f, a, _ in moves)
    async with ctx.audited(request, "function.release", target, principal) as note:
        released = await blocking(ctx.host.release, moves, principal=principal)
        note.detail["moves"] = [[split(m.function)[1], m.alias, m.previous, m.version] for m in released]
    return JSONResponse(
        {
            "released": [
                {"function": split(m.function)[1], "alias": m.alias, "previous": m.previous, "version": m.version}
                for m in released
            ]
        }
    )
