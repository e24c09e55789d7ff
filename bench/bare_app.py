"""The baseline for bench/http_load.py and bench/peers.py: a bare Starlette JSON endpoint under the same
Hypercorn settings as `fnhost serve` (hypercorn.asyncio.serve, access log off).

    python bench/bare_app.py PORT [PROCESSES]

With PROCESSES > 1 it forks that many servers over one listening socket, as `fnhost serve --processes`
does (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import os
import socket
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
    port, processes = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1
    config = Config()
    config.accesslog = None
    if processes == 1:
        config.bind = [f"127.0.0.1:{port}"]
    else:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)
        sock.set_inheritable(True)
        config.bind = [f"fd://{sock.fileno()}"]
        for _ in range(processes - 1):
            if os.fork() == 0:
                break  # a child serves too (stop them all with a signal to the process group)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
