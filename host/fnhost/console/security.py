"""What keeps a browser session safe: the cookies, CSRF tokens, the same-origin check and the headers.

- The session cookie holds a 256-bit random id (`stores.sessions`); it is HttpOnly (no script reads
  it), SameSite=Strict (no other site's page sends it), scoped to `/console`, and Secure when the
  console is served over https.
- Every POST carries a CSRF token in a form field: for a signed-in session an HMAC of its id (so
  nothing more is stored, and a token is worthless with any other session); for the sign-in form a
  random value that must also be in a short-lived cookie (double submit), so another site cannot
  sign a browser in with its own key. Every POST must also come from this console's own origin
  (`Origin`, else `Referer`; neither is refused).
- Every response forbids inline script and framing (`CONTENT_SECURITY_POLICY`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "fnhost_session"
SIGNIN_COOKIE = "fnhost_signin"
COOKIE_PATH = "/console"
SIGNIN_COOKIE_MAX_AGE_S = 15 * 60
CSRF_FIELD = "csrf"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: derived from its id, so only its holder can compute it."""
    return hmac.new(session_id.encode(), b"fnhost console csrf", hashlib.sha256).hexdigest()


def new_signin_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected or "", given)


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def cross_origin_reason(request: Request) -> str | None:
    """Why a POST is not from this console's own origin, or None when it is."""
    expected = own_origin(request)
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == expected:
            return None
        return f"the form was sent from {origin[:100]!r}, not from this console ({expected})"
    referer = request.headers.get("referer")
    if referer is None:
        return "the request has neither an Origin nor a Referer header; send forms from the console's own pages"
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}" == expected:
        return None
    return f"the form was sent from a page of {parts.scheme}://{parts.netloc[:100]}, not from this console ({expected})"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )


class SecurityHeaders:
    """Adds `HEADERS` to every console response, and `Cache-Control: no-store` to all but static assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith(COOKIE_PATH + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers[key] = value
                headers["cache-control"] = "public, max-age=300" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
