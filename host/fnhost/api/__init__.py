"""The HTTP API: a thin Starlette app over `Host` and the control-plane libraries."""

from .app import create_app

__all__ = ["create_app"]
