"""Functions: deploy a bundle, list, describe, list versions, delete, point an alias."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import DEPLOY, INVOKE, Principal
from ..host import Version
from ..namespaces import namespace_of as namespace_of_function
from ..stores import LIVE, FunctionRecord
from .context import READ, ApiContext, blocking, context_of, function_of, namespace_of
from .errors import InvalidRequest, request_id_of
from .parsing import json_object
from .serialize import jsonable


async def deploy(request: Request) -> Response:
    """PUT /v1/functions/{name}: body = bundle zip. 201 new version, 200 the same bundle again."""
    ctx = context_of(request)
    name = function_of(request)
    ctx.writable("deploying")
    principal = await ctx.authorize(request, DEPLOY, name)  # before a byte of the body is read
    version = await deploy_bundle(ctx, request, principal, name, await request.body())
    live = await blocking(ctx.host.get_version, name)
    body = {
        "name": version.name,
        "version": version.version,
        "sha256": version.sha256,
        "created": version.created,
        "created_at": version.created_at,
        "live_version": live.version,  # not this version when `live` is pinned (see DELETE .../aliases/live)
    }
    return JSONResponse(body, status_code=201 if version.created else 200)


async def deploy_bundle(ctx: ApiContext, request: Request, principal: Principal, name: str, data: bytes) -> Version:
    """Deploy bundle zip `data` as function `name` (a store name) for `principal`: what the API's deploy
    and the console's upload both run (the one pipeline, fnhost.control.deploys: bundle, signature,
    name, grants, compile, audit)."""
    ctx.writable("deploying")
    await ctx.check(request, principal, DEPLOY, name)
    deployed = await blocking(ctx.deployer.deploy_bundle, data, principal, name=name, request_id=request_id_of(request))
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
