"""Administration: secrets (names only ever leave the server), API keys, the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.audit import MAX_PAGE
from ..control.auth import ADMIN
from ..errors import NotFound
from ..names import RESOURCE
from .context import blocking, context_of
from .errors import InvalidRequest
from .parsing import json_object, query_int
from .serialize import jsonable


async def list_secrets(request: Request) -> Response:
    """GET /v1/secrets: names only."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    await ctx.authorize(request, ADMIN)
    return JSONResponse({"secrets": await blocking(ctx.host.secrets.names)})


async def set_secret(request: Request) -> Response:
    """PUT /v1/secrets/{name}: body {"value": "..."}; the value is encrypted at rest."""
    ctx = context_of(request)
    name = request.path_params["name"]
    ctx.writable("setting secrets")
    principal = await ctx.authorize(request, ADMIN)
    async with ctx.audited(request, "secret.set", name, principal):
        value = (await json_object(request)).get("value")
        if not isinstance(value, str):
            raise InvalidRequest('body must be {"value": "<the secret as a string>"}')
        if not RESOURCE.matches(name):
            raise InvalidRequest(f"secret name {name!r}: use letters, digits, '.', '_', '-' (1..128 chars)")
        await blocking(ctx.host.secrets.set, name, value)
    return JSONResponse({"name": name, "set": True})


async def delete_secret(request: Request) -> Response:
    """DELETE /v1/secrets/{name}."""
    ctx = context_of(request)
    name = request.path_params["name"]
    ctx.writable("deleting secrets")
    principal = await ctx.authorize(request, ADMIN)
    async with ctx.audited(request, "secret.delete", name, principal):
        if not await blocking(ctx.host.secrets.delete, name):
            raise NotFound(f"no secret named {name!r}; GET /v1/secrets lists them")
    return JSONResponse({"name": name, "deleted": True})


async def create_key(request: Request) -> Response:
    """POST /v1/keys: body {"name", "scopes": [...], "functions": [...]?}; the token is shown once."""
    ctx = context_of(request)
    ctx.writable("creating API keys")
    principal = await ctx.authorize(request, ADMIN)
    async with ctx.audited(request, "key.create", "-", principal) as note:
        data = await json_object(request)
        name, scopes, functions = data.get("name"), data.get("scopes"), data.get("functions")
        note.detail.update(name=name, scopes=scopes, functions=functions)
        if not isinstance(name, str):
            raise InvalidRequest('"name" must be a string saying who or what uses the key')
        if not isinstance(scopes, list):
            raise InvalidRequest('"scopes" must be a list of scope names, e.g. ["invoke"]')
        if functions is not None and not isinstance(functions, list):
            raise InvalidRequest('"functions" must be a list of function names, or absent for all functions')
        try:
            key_id, token = await blocking(ctx.keys.create, name, scopes, functions)
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        note.target = key_id
    info = await blocking(ctx.keys.get, key_id)
    return JSONResponse({**jsonable(info), "token": token}, status_code=201)


async def list_keys(request: Request) -> Response:
    """GET /v1/keys: ids, names, scopes; never tokens."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    await ctx.authorize(request, ADMIN)
    return JSONResponse({"keys": jsonable(await blocking(ctx.keys.list))})


async def revoke_key(request: Request) -> Response:
    """DELETE /v1/keys/{id}."""
    ctx = context_of(request)
    key_id = request.path_params["id"]
    ctx.writable("revoking API keys")
    principal = await ctx.authorize(request, ADMIN)
    async with ctx.audited(request, "key.revoke", key_id, principal):
        info = await blocking(ctx.keys.revoke, key_id)
    return JSONResponse(jsonable(info))


async def list_audit(request: Request) -> Response:
    """GET /v1/audit?limit=&after=: oldest first; pass `next_after` as `after` for the next page."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    await ctx.authorize(request, ADMIN)
    limit = query_int(request, "limit", 100, 1, MAX_PAGE)
    after = query_int(request, "after", 0, 0, 2**62)
    entries = await blocking(ctx.audit_log.list, limit=limit, after_id=after)
    next_after = entries[-1].id if len(entries) == limit else None
    return JSONResponse({"entries": jsonable(entries), "next_after": next_after})


async def verify_audit(request: Request) -> Response:
    """GET /v1/audit/verify: recomputes the hash chain; 200 either way, `ok` says if it holds."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    await ctx.authorize(request, ADMIN)
    return JSONResponse(jsonable(await blocking(ctx.audit_log.verify)))
