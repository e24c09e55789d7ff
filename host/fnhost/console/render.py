"""The console's state, its templates, and `page`: what every console endpoint goes through.

`page` resolves the session (a missing, expired or signed-out one, or one whose key was revoked,
shows the sign-in form), checks every POST's origin and CSRF token before the handler runs, and
turns a `FnhostError` into an HTML error page with the error's status and message. The handlers
then call the same API-layer functions as the JSON API (`api.functions.deploy_bundle`, ...), which
check the key's scopes and namespaces.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..api.context import ApiContext, blocking
from ..control.auth import ADMIN, Principal
from ..errors import FnhostError, Unauthorized
from ..namespaces import DEFAULT, check_namespace
from ..stores.sessions import SessionStore
from .security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_COOKIE_MAX_AGE_S,
    clear_cookie,
    cross_origin_reason,
    csrf_token,
    new_signin_token,
    set_cookie,
    tokens_match,
)

HERE = Path(__file__).parent
MAX_FORM_FIELDS = 20


@dataclass(frozen=True)
class ConsoleUser:
    """A signed-in browser: the key as it is now, its session, the session's CSRF token."""

    principal: Principal
    session_id: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.principal.scopes

    @property
    def is_global_admin(self) -> bool:
        return self.is_admin and self.principal.namespace is None


class CsrfRefused(FnhostError):
    """A console POST that failed the CSRF or same-origin check: nothing was done."""

    code = "csrf_failed"
    http_status = 403


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms_time(value: int | None) -> str:
    return "-" if value is None else _time(value / 1000)


class Console:
    """Everything the console's endpoints share: the API context, the sessions, the templates."""

    def __init__(self, ctx: ApiContext, sessions: SessionStore) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every value is text, never markup: names, logs and audit details included
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["time"] = _time
        self.templates.filters["ms_time"] = _ms_time

    # rendering ---------------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, user: ConsoleUser | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        namespace = values.pop("namespace", None)
        if namespace is None and user is not None:
            namespace = self.namespace_of(request, user, quiet=True)
        html = self.templates.get_template(template).render(
            user=user, namespace=namespace or DEFAULT, read_only=self.ctx.read_only, path=request.url.path, **values
        )
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, user: ConsoleUser | None, status: int, code: str, message: str) -> HTMLResponse:
        return self.render(request, "error.html", user, status, code=code, message=message, http_status=status)

    def signin_form(self, request: Request, status: int = 200, message: str | None = None) -> HTMLResponse:
        """The sign-in page, with a fresh double-submit token in a form field and a cookie."""
        token = new_signin_token()
        response = self.render(request, "signin.html", None, status, signin_token=token, message=message)
        set_cookie(request, response, SIGNIN_COOKIE, token, SIGNIN_COOKIE_MAX_AGE_S)
        return response

    @staticmethod
    def namespace_of(request: Request, user: ConsoleUser, *, quiet: bool = False) -> str:
        """The namespace a page shows: `?ns=`, else the key's own (a global admin's: `default`)."""
        raw = request.query_params.get("ns") or user.principal.namespace or DEFAULT
        if quiet:
            try:
                return check_namespace(raw)
            except FnhostError:
                return user.principal.namespace or DEFAULT
        return check_namespace(raw)

    # sessions ----------------------------------------------------------------------------------
    async def user_of(self, request: Request) -> ConsoleUser:
        """The signed-in user, the key read again now; `Unauthorized` saying why there is none."""
        session_id = request.cookies.get(SESSION_COOKIE)
        session = await blocking(self.sessions.get, session_id)
        if session is None or session_id is None:
            raise Unauthorized(
                "your session has expired or you signed out; sign in again" if session_id else "sign in with an API key"
            )
        try:
            principal = await blocking(self.ctx.keys.principal, session.key_id)
        except Unauthorized:
            await blocking(self.sessions.delete, session_id)
            raise
        return ConsoleUser(principal, session_id, csrf_token(session_id))

    @staticmethod
    async def form(request: Request) -> FormData:
        return await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)

    async def check_post(self, request: Request, expected_token: str) -> FormData:
        """A POST's same-origin and CSRF checks; the parsed form. `CsrfRefused` before anything is done."""
        reason = cross_origin_reason(request)
        if reason is not None:
            raise CsrfRefused(f"refused: {reason}; nothing was changed")
        form = await self.form(request)
        if not tokens_match(expected_token, form.get(CSRF_FIELD)):
            raise CsrfRefused(
                "refused: the form's CSRF token is missing or wrong (the page may be from an earlier session); "
                "reload the page and send the form again; nothing was changed"
            )
        return form


Handler = Callable[[Console, Request, ConsoleUser], Awaitable[Response]]


def page(console: Console, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: the session, a POST's checks, then `handler`; errors as HTML pages."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            user = await console.user_of(request)
        except Unauthorized as e:
            response: Response = console.signin_form(request, 401, str(e))
            if SESSION_COOKIE in request.cookies:
                clear_cookie(request, response, SESSION_COOKIE)
            return response
        try:
            if request.method == "POST":
                await console.check_post(request, user.csrf)
            return await handler(console, request, user)
        except FnhostError as e:
            return console.error(request, user, e.http_status, e.code, str(e))
        except HTTPException as e:  # a malformed form (multipart)
            return console.error(request, user, e.status_code, "invalid_request", str(e.detail))

    return endpoint


def see_other(url: str) -> RedirectResponse:
    """After a POST that changed something: the page that shows it (303, so a reload does not resend)."""
    return RedirectResponse(url, status_code=303)
