"""Administration: secrets (names only ever leave the server), API keys, the audit log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..control.audit import MAX_PAGE, AuditEntry, VerifyResult
from ..control.auth import ADMIN, ApiKeyInfo, Principal
from ..errors import Forbidden, NotFound
from ..names import RESOURCE
from ..namespaces import in_namespace, qualify
from .context import ApiContext, blocking, context_of, namespace_of
from .errors import InvalidRequest
from .parsing import json_object, query_int
from .serialize import jsonable


async def list_secrets(request: Request) -> Response:
    """GET /v1/secrets: names only, of the namespace's secrets."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    namespace = namespace_of(request)
    await ctx.authorize(request, ADMIN, namespace=namespace)
    return JSONResponse({"secrets": in_namespace(namespace, await blocking(ctx.host.secrets.names))})


async def set_secret(request: Request) -> Response:
    """PUT /v1/secrets/{name}: body {"value": "..."}; the value is encrypted at rest."""
    ctx = context_of(request)
    name = request.path_params["name"]
    namespace = namespace_of(request)
    ctx.writable("setting secrets")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace)
    async with ctx.audited(request, "secret.set", qualify(namespace, name), principal):
        value = (await json_object(request)).get("value")
        if not isinstance(value, str):
            raise InvalidRequest('body must be {"value": "<the secret as a string>"}')
        if not RESOURCE.matches(name):
            raise InvalidRequest(f"secret name {name!r}: use letters, digits, '.', '_', '-' (1..128 chars)")
        await blocking(ctx.host.secrets.set, qualify(namespace, name), value)
    return JSONResponse({"name": name, "set": True})


async def delete_secret(request: Request) -> Response:
    """DELETE /v1/secrets/{name}."""
    ctx = context_of(request)
    name = request.path_params["name"]
    namespace = namespace_of(request)
    ctx.writable("deleting secrets")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace)
    async with ctx.audited(request, "secret.delete", qualify(namespace, name), principal):
        if not RESOURCE.matches(name) or not await blocking(ctx.host.secrets.delete, qualify(namespace, name)):
            raise NotFound(f"no secret named {name!r}; GET /v1/secrets lists them")
    return JSONResponse({"name": name, "deleted": True})


async def create_key(request: Request) -> Response:
    """POST /v1/keys: body {"name", "scopes": [...], "functions": [...]?, "namespace"?, "may_grant": [...]?};
    the token is shown once. An admin of one namespace makes keys of that namespace only."""
    ctx = context_of(request)
    ctx.writable("creating API keys")
    principal = await ctx.authorize(request, ADMIN)
    info, token = await create_api_key(ctx, request, principal, await json_object(request))
    return JSONResponse({**jsonable(info), "token": token}, status_code=201)


async def create_api_key(
    ctx: ApiContext, request: Request, principal: Principal, data: dict[str, Any]
) -> tuple[ApiKeyInfo, str]:
    """A new key as `data` asks ({"name", "scopes", "functions"?, "namespace"?, "may_grant"?}), made by admin
    `principal` (of one namespace: keys of that namespace only), audited; its token is returned this once."""
    ctx.writable("creating API keys")
    await ctx.check(request, principal, ADMIN, None)
    async with ctx.audited(request, "key.create", "-", principal) as note:
        name, scopes, functions = data.get("name"), data.get("scopes"), data.get("functions")
        namespace, may_grant = data.get("namespace", principal.namespace), data.get("may_grant")
        note.detail.update(name=name, scopes=scopes, functions=functions, namespace=namespace, may_grant=may_grant)
        if not isinstance(name, str):
            raise InvalidRequest('"name" must be a string saying who or what uses the key')
        if not isinstance(scopes, list):
            raise InvalidRequest('"scopes" must be a list of scope names, e.g. ["invoke"]')
        if functions is not None and not isinstance(functions, list):
            raise InvalidRequest('"functions" must be a list of function names, or absent for all functions')
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidRequest('"namespace" must be a namespace name, or absent')
        if may_grant is not None and not isinstance(may_grant, list):
            raise InvalidRequest('"may_grant" must be a list of KIND:NAME patterns, e.g. ["secret:billing-*"]')
        _require_key_namespace(principal, namespace)
        try:
            key_id, token = await blocking(
                ctx.keys.create, name, scopes, functions, namespace=namespace, may_grant=may_grant
            )
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        note.target = key_id
    return await blocking(ctx.keys.get, key_id), token


async def list_keys(request: Request) -> Response:
    """GET /v1/keys: ids, names, scopes; never tokens."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    principal = await ctx.authorize(request, ADMIN)
    return JSONResponse({"keys": jsonable(await keys_of(ctx, request, principal))})


async def keys_of(ctx: ApiContext, request: Request, principal: Principal) -> list[ApiKeyInfo]:
    """The keys admin `principal` manages: every key (a global admin), or its namespace's."""
    ctx.writable("the admin API")
    await ctx.check(request, principal, ADMIN, None)
    return await blocking(ctx.keys.list, principal.namespace)


async def revoke_key(request: Request) -> Response:
    """DELETE /v1/keys/{id}."""
    ctx = context_of(request)
    ctx.writable("revoking API keys")
    principal = await ctx.authorize(request, ADMIN)
    return JSONResponse(jsonable(await revoke_api_key(ctx, request, principal, request.path_params["id"])))


async def revoke_api_key(ctx: ApiContext, request: Request, principal: Principal, key_id: str) -> ApiKeyInfo:
    """Revoke key `key_id` (of admin `principal`'s namespace, unless global), audited; its console
    sessions stop working at once (they re-read the key on every request)."""
    ctx.writable("revoking API keys")
    await ctx.check(request, principal, ADMIN, None)
    async with ctx.audited(request, "key.revoke", key_id, principal):
        return await blocking(ctx.keys.revoke, key_id, principal.namespace)


async def list_audit(request: Request) -> Response:
    """GET /v1/audit?limit=&after=: oldest first; pass `next_after` as `after` for the next page."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    principal = await ctx.authorize(request, ADMIN)
    limit = query_int(request, "limit", 100, 1, MAX_PAGE)
    after = query_int(request, "after", 0, 0, 2**62)
    entries = await audit_entries(ctx, request, principal, limit, after)
    next_after = entries[-1].id if len(entries) == limit else None
    return JSONResponse({"entries": jsonable(entries), "next_after": next_after})


async def audit_entries(
    ctx: ApiContext, request: Request, principal: Principal, limit: int = 100, after: int = 0
) -> list[AuditEntry]:
    """Audit entries after id `after`, oldest first, for a global admin (the failed sign-ins and API
    calls counted so far included)."""
    ctx.writable("the admin API")
    await require_global_admin(ctx, request, principal)
    if ctx.failed_auth is not None:
        await blocking(ctx.failed_auth.flush, end_interval=True)  # what was counted so far, readable now
    return await blocking(ctx.audit_log.list, limit=limit, after_id=after)


async def verify_audit(request: Request) -> Response:
    """GET /v1/audit/verify: recomputes the hash chain; 200 either way, `ok` says if it holds."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    principal = await ctx.authorize(request, ADMIN)
    return JSONResponse(jsonable(await verify_audit_log(ctx, request, principal)))


async def verify_audit_log(ctx: ApiContext, request: Request, principal: Principal) -> VerifyResult:
    """The hash chain recomputed, for a global admin."""
    ctx.writable("the admin API")
    await require_global_admin(ctx, request, principal)
    return await blocking(ctx.audit_log.verify)


async def create_share(request: Request) -> Response:
    """POST /v1/shares: body {"kind": "kv"|"secret"|"queue", "name", "with": NAMESPACE}; audited."""
    ctx = context_of(request)
    namespace = namespace_of(request)
    ctx.writable("sharing resources")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace)
    async with ctx.audited(request, "share.create", namespace, principal) as note:
        data = await json_object(request)
        kind, name, grantee = data.get("kind"), data.get("name"), data.get("with")
        note.detail.update(kind=kind, name=name, to=grantee)
        if not all(isinstance(v, str) for v in (kind, name, grantee)):
            raise InvalidRequest('body must be {"kind": "kv" | "secret" | "queue", "name": "...", "with": "<ns>"}')
        share = await blocking(ctx.host.shares.create, namespace, kind, name, grantee, principal.key_id)
        note.target = share.id
    return JSONResponse({**jsonable(share), "reference": share.reference}, status_code=201)


async def list_shares(request: Request) -> Response:
    """GET /v1/shares: the shares this namespace made or received, revoked ones included."""
    ctx = context_of(request)
    ctx.writable("the admin API")
    namespace = namespace_of(request)
    await ctx.authorize(request, ADMIN, namespace=namespace)
    return JSONResponse({"shares": jsonable(await blocking(ctx.host.shares.list, namespace))})


async def revoke_share(request: Request) -> Response:
    """DELETE /v1/shares/{id}: functions of the other namespace lose the resource at their next call."""
    ctx = context_of(request)
    namespace = namespace_of(request)
    share_id = request.path_params["id"]
    ctx.writable("revoking shares")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace)
    async with ctx.audited(request, "share.revoke", share_id, principal):
        share = await blocking(ctx.host.shares.revoke, namespace, share_id, principal.key_id)
    return JSONResponse(jsonable(share))


def _require_key_namespace(principal: Principal, namespace: str | None) -> None:
    """An admin of one namespace creates keys of that namespace only (never global ones)."""
    if principal.namespace is not None and namespace != principal.namespace:
        raise Forbidden(
            f"API key {principal.key_id} ({principal.name}) is an admin of namespace '{principal.namespace}' "
            f"and creates keys of that namespace only, not of {namespace or 'every namespace (global)'!r}"
        )


async def require_global_admin(ctx: ApiContext, request: Request, principal: Principal) -> None:
    """The audit log spans every namespace: only a global admin key reads it."""
    await ctx.check(request, principal, ADMIN, None)
    if principal.namespace is not None:
        error = Forbidden(
            f"API key {principal.key_id} ({principal.name}) is an admin of namespace '{principal.namespace}'; "
            "the audit log spans every namespace and needs a global admin key"
        )
        await ctx.audit_denied(request, principal, error, {})
        raise error
