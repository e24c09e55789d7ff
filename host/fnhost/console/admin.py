"""API keys (list, create, revoke) and the audit log with its verification: admins only, as in the API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..api import admin as api_admin
from ..api.context import blocking
from ..api.errors import InvalidRequest
from ..api.parsing import query_int
from ..control.audit import MAX_PAGE
from .render import Console, ConsoleUser, see_other

AUDIT_PAGE = 100


async def keys_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/keys: the keys this admin manages (never tokens)."""
    keys = await api_admin.keys_of(console.ctx, request, user.principal)
    return console.render(request, "keys.html", user, keys=keys)


async def create_key(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/keys: form {name, scopes (checkboxes), functions, namespace, may_grant}; shows the token once."""
    form = await console.form(request)
    data: dict[str, object] = {"name": form.get("name"), "scopes": form.getlist("scopes")}
    for field in ("functions", "may_grant"):
        raw = form.get(field)
        if isinstance(raw, str) and raw.strip():
            data[field] = [part.strip() for part in raw.replace(",", " ").split() if part.strip()]
    namespace = form.get("namespace")
    if isinstance(namespace, str) and namespace.strip():
        data["namespace"] = namespace.strip()
    if not data["scopes"]:
        raise InvalidRequest("choose at least one scope (admin, deploy or invoke)")
    info, token = await api_admin.create_api_key(console.ctx, request, user.principal, data)
    return console.render(request, "key_created.html", user, key=info, token=token)


async def revoke_key(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/keys/{id}/revoke: the key and every console session opened with it stop at once."""
    key_id = request.path_params["id"]
    await api_admin.revoke_api_key(console.ctx, request, user.principal, key_id)
    await blocking(console.sessions.delete_for_key, key_id)
    return see_other("/console/keys")


async def audit_page(console: Console, request: Request, user: ConsoleUser) -> Response:
    """GET /console/audit?after=: the newest entries (or those after `after`) and the chain's verification."""
    verified = await api_admin.verify_audit_log(console.ctx, request, user.principal)
    after = query_int(request, "after", 0, 0, 2**62)
    if "after" not in request.query_params:  # the newest page: start AUDIT_PAGE entries before the head
        head = await blocking(console.ctx.audit_log.head)
        after = max(0, (head[0] if head else 0) - AUDIT_PAGE)
    entries = await api_admin.audit_entries(console.ctx, request, user.principal, min(AUDIT_PAGE, MAX_PAGE), after)
    return console.render(
        request, "audit.html", user, verified=verified, entries=list(reversed(entries)), after=after, page=AUDIT_PAGE
    )
