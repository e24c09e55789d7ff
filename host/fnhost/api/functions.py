"""Functions: deploy a bundle, list, describe, list versions, delete, point an alias."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.auth import DEPLOY, INVOKE, Principal
from ..control.bundles import BundleLimits, open_bundle
from ..control.signing import verify_bundle
from ..host import Version
from ..namespaces import namespace_of as namespace_of_function
from ..namespaces import split
from ..stores import LIVE, FunctionRecord
from .context import READ, ApiContext, blocking, context_of, function_of, namespace_of
from .errors import InvalidRequest
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
    """Deploy bundle zip `data` as function `name` (a store name) for `principal`, audited: what the API's
    deploy and the console's upload both run."""
    ctx.writable("deploying")
    await ctx.check(request, principal, DEPLOY, name)
    async with ctx.audited(request, "function.deploy", name, principal, {"bytes": len(data)}) as note:
        version = await blocking(_deploy, ctx, name, data, principal, note.detail)
        note.detail.update(version=version.version, sha256=version.sha256, created=version.created)
    return version


def _deploy(
    ctx: ApiContext, name: str, data: bytes, principal: Principal, detail: dict[str, object]
) -> Version:
    bundle = open_bundle(data, limits=BundleLimits(max_upload_bytes=ctx.max_bundle_bytes))
    detail["bundle_sha256"] = bundle.sha256
    if ctx.trusted_keys:
        detail["signed_by"] = verify_bundle(bundle, ctx.trusted_keys)
    plain = split(name)[1]
    if bundle.manifest.name != plain:
        raise InvalidRequest(
            f"the URL names function {plain!r} but the bundle's fnhost.toml says name = "
            f"{bundle.manifest.name!r}; deploy to /v1/functions/{bundle.manifest.name}"
        )
    # The grant check (who may give this function what) is inside Host.deploy, for every caller.
    return ctx.host.deploy(name, bundle.wasm, bundle.manifest, principal=principal)


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
