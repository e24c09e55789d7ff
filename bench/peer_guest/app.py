"""The peer guest for bench/peers.py: the Python hello's `GET /hello?name=x` as a wasi:http/proxy
component, so `wasmtime serve` can run the same work natively."""

import json
from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        url = urlsplit(request.path_with_query() or "/")
        name = parse_qs(url.query).get("name", ["world"])[0]
        data = json.dumps({"message": f"Hello, {name}!"}, separators=(",", ":")).encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(data)
        OutgoingBody.finish(body, None)
