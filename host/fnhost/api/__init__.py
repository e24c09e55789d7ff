"""The HTTP API: a thin Starlette app over `Host` and the control-plane libraries.

`create_app` is imported on first use: `fnhost.api.paths` (which the client and CLI read) must not
import prometheus_client, whose value class is fixed when it is first imported (`serve --processes`
sets PROMETHEUS_MULTIPROC_DIR before that).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
