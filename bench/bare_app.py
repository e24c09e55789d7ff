"""The baseline for bench/http_load.py: a bare Starlette JSON endpoint under the same Hypercorn settings
as `fnhost serve` (hypercorn.asyncio.serve, one process, access log off)."""

from __future__ import annotations

import asyncio
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": f"Hello, {request.query_params.get('name', 'world')}!"})


app = Starlette(routes=[Route("/hello", hello)])

if __name__ == "__main__":
    config = Config()
    config.bind = [f"127.0.0.1:{sys.argv[1]}"]
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
