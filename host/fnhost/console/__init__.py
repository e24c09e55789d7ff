"""The web console at /console, served by fnhost itself (docs/console.md).

Server-rendered pages (Jinja2, autoescaped) and one small dependency-free script, every asset from
fnhost: the console works offline at the edge. It signs a browser in with an API key, exchanged
for a server-side session (`stores.sessions`), and calls the same API-layer functions as the JSON
API, so a key's scopes and namespaces apply exactly as they do there.
"""

from .routes import console_routes

__all__ = ["console_routes"]
