"""Signing in (an API key exchanged for a session) and out."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from ..api.context import blocking
from ..errors import Unauthorized
from .render import Console, ConsoleUser, see_other
from .security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    clear_cookie,
    cross_origin_reason,
    set_cookie,
    tokens_match,
)

HOME = "/console/functions"
_HEADER_HINT = re.compile(r"[;,] send it as `Authorization: Bearer <token>`")  # the API's hint; a form has no header


async def signin_page(console: Console, request: Request) -> Response:
    """GET /console/signin."""
    try:
        await console.user_of(request)
    except Unauthorized:
        return console.signin_form(request)
    return see_other(HOME)


async def signin(console: Console, request: Request) -> Response:
    """POST /console/signin: form {key, csrf}. A wrong key is counted and audited as the API counts one."""
    reason = cross_origin_reason(request)
    if reason is not None:
        return console.signin_form(request, 403, f"sign-in refused: {reason}")
    form = await console.form(request)
    if not tokens_match(request.cookies.get(SIGNIN_COOKIE), form.get(CSRF_FIELD)):
        return console.signin_form(
            request, 403, "sign-in refused: the form expired or its CSRF token is wrong; sign in on this page"
        )
    key = form.get("key")
    token = key.strip() if isinstance(key, str) else ""
    try:
        principal = await console.ctx.authenticate_header(request, f"Bearer {token}" if token else None)
    except Unauthorized as e:
        return console.signin_form(request, 401, "sign-in refused: " + _HEADER_HINT.sub("", str(e)))
    session_id = await blocking(console.sessions.create, principal.key_id)
    await console.ctx.audit(request, "console.signin", target=principal.key_id, principal=principal)
    response = see_other(HOME)
    set_cookie(request, response, SESSION_COOKIE, session_id, int(console.sessions.ttl_s))
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


async def signout(console: Console, request: Request, user: ConsoleUser) -> Response:
    """POST /console/signout: the session is forgotten on the server, the cookie cleared."""
    await blocking(console.sessions.delete, user.session_id)
    await console.ctx.audit(request, "console.signout", target=user.principal.key_id, principal=user.principal)
    response = see_other("/console/signin")
    clear_cookie(request, response, SESSION_COOKIE)
    return response
