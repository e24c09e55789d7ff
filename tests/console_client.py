"""A browser's side of the console for httpx tests: sign in, read the CSRF token, send forms."""

from __future__ import annotations

import re

import httpx

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, html[:2000]
    return match.group(1)


def sign_in(url: str, token: str) -> tuple[httpx.Client, str]:
    """A client holding a console session for `token` (sent from the console's own origin), and its CSRF token."""
    client = httpx.Client(base_url=url, headers={"origin": url}, timeout=30)
    form = client.get("/console/signin")
    r = client.post("/console/signin", data={"key": token, "csrf": csrf_of(form.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/functions", r.text
    page = client.get("/console/functions")
    assert page.status_code == 200, page.text
    return client, csrf_of(page.text)
