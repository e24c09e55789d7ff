"""Blob objects over HTTP for operators (docs/api.md, Blobs): thin handlers over `Host.blobs`.

Both directions stream: an upload is written on in chunks as it arrives (its route is `streamed`:
the size limit is enforced while it streams, its deadline moves with its progress, and nothing is
visible unless the whole body arrived), a download is read out in chunks. Like queues, blobs of a
namespace are its admins' (the namespaced routes address another namespace's).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..control.auth import ADMIN
from ..errors import NotFound
from ..names import RESOURCE
from ..namespaces import qualify
from ..stores.blobs import MAX_LIST_LIMIT, BlobInfo, BlobReader, require_key
from ..stores.errors import CorruptBlob, InvalidArgument
from .context import blocking, context_of, log, namespace_of
from .errors import error_response, request_id_of
from .parsing import chain_depth_of, query_int

WRITE_BYTES = 1 << 20
"""An upload is handed to the store in pieces of about this size (one thread hop each)."""


def _bucket(request: Request) -> str:
    name = request.path_params["bucket"]
    if not RESOURCE.matches(name):
        raise InvalidArgument(f"bucket name {name!r} is not valid: use 1..128 letters, digits, '.', '_' or '-'")
    return qualify(namespace_of(request), name)


def _key(request: Request) -> str:
    return require_key(request.path_params["key"])


def _info_json(info: BlobInfo, bucket: str) -> dict[str, object]:
    return {**info.to_dict(), "bucket": bucket}


async def put_blob(request: Request) -> Response:
    """PUT /v1/blobs/{bucket}/{key}: the body is the object (streamed), `Content-Type` its type."""
    ctx = context_of(request)
    bucket, key = _bucket(request), _key(request)
    ctx.writable("writing blobs")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    content_type, depth = request.headers.get("content-type"), chain_depth_of(request)
    writer = await blocking(ctx.host.blobs.writer, bucket, key, content_type, chain_depth=depth)
    try:
        pending: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= WRITE_BYTES:
                await blocking(writer.write, b"".join(pending))
                pending, size = [], 0
        if pending:
            await blocking(writer.write, b"".join(pending))
        async with ctx.audited(request, "blob.put", f"{bucket}/{key}", principal) as note:
            info = await blocking(writer.finish)
            note.detail.update(size=info.size, sha256=info.sha256)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; nothing was stored
    finally:
        if not writer.done:
            await blocking(writer.abort)
    return JSONResponse(_info_json(info, request.path_params["bucket"]), status_code=201)


async def get_blob(request: Request) -> Response:
    """GET /v1/blobs/{bucket}/{key}: the object, streamed, with its type, length and sha256.

    HTTP's conditional and range requests, with the sha256 as the (strong) ETag: `If-None-Match`
    → 304; one `Range: bytes=...` → 206 with `Content-Range` (416 outside the object; several
    ranges, a malformed header or a stale `If-Range` → the whole object, as RFC 9110 allows)."""
    ctx = context_of(request)
    bucket, key = _bucket(request), _key(request)
    await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    reader = await blocking(ctx.host.blobs.open, bucket, key)
    if reader is None:
        raise NotFound(f"bucket '{request.path_params['bucket']}' has no object {key!r}; `fnhost blobs ls` lists them")
    info = reader.info
    etag = f'"{info.sha256}"'
    headers = {
        "accept-ranges": "bytes",
        "etag": etag,
        "x-fnhost-sha256": info.sha256,
        "x-fnhost-updated-at": f"{info.updated_at:.3f}",
    }
    streamed = False  # once true, the response's body iterator closes the reader
    try:
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        status = 200
        fresh = request.headers.get("if-range", etag) == etag  # a stale If-Range: the whole object
        wanted = byte_range(request.headers.get("range"), info.size) if fresh else None
        if wanted is not None:
            reader.byte_range(*wanted)
            status = 206
            headers["content-range"] = f"bytes {wanted[0]}-{wanted[1] - 1}/{info.size}"
        headers["content-length"] = str(reader.end - reader.offset)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=info.content_type)
        streamed = True
        return StreamingResponse(_chunks(reader), status_code=status, headers=headers, media_type=info.content_type)
    except RangeNotSatisfiable as e:
        headers["content-range"] = f"bytes */{info.size}"
        return error_response(416, "range_not_satisfiable", str(e), request_id=request_id_of(request), headers=headers)
    finally:
        if not streamed:
            await blocking(reader.close)


_BYTE_RANGE = re.compile(r"(\d*)\s*-\s*(\d*)", re.ASCII)  # one range; a list of several does not match


class RangeNotSatisfiable(Exception):
    """A `Range` that selects no byte of the object (416)."""


def _matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` names this ETag (weakly compared, as RFC 9110 says for this header) or is `*`."""
    if if_none_match is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a `Range` header asks for, as (start, end exclusive) within `size`; None
    for the whole object (no header, another unit, several ranges, malformed: RFC 9110 §14.2 lets a
    server ignore those). `RangeNotSatisfiable` when the range starts past the end."""
    if header is None or not header.lower().startswith("bytes="):
        return None
    spec = _BYTE_RANGE.fullmatch(header[6:].strip())
    if spec is None or spec.group(1) == spec.group(2) == "":
        return None
    first, last = spec.group(1), spec.group(2)
    if not first:  # bytes=-N: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} selects no byte of the {size}-byte object")
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(
            f"range {header!r} starts at byte {start}, past the end of the {size}-byte object; "
            f"ask for bytes=0-{max(0, size - 1)} or less"
            if size
            else f"range {header!r} asks for bytes of an empty object; ask without a Range header"
        )
    return start, min(size, int(last) + 1) if last else size


async def _chunks(reader: BlobReader) -> AsyncIterator[bytes]:
    """The reader's bytes; when they turn out damaged (at the end: `BlobReader`), the response is
    broken off short of its length, so the client cannot take it as the object."""
    try:
        while chunk := await blocking(reader.read, WRITE_BYTES):
            yield chunk
    except CorruptBlob as e:
        log.error("fnhost: download of %s cut short: %s", reader.info.key, e)
        raise
    finally:
        with contextlib.suppress(Exception):
            await blocking(reader.close)


async def delete_blob(request: Request) -> Response:
    """DELETE /v1/blobs/{bucket}/{key}: {"deleted": true|false} (a missing object is not an error)."""
    ctx = context_of(request)
    bucket, key = _bucket(request), _key(request)
    ctx.writable("deleting blobs")
    principal = await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    async with ctx.audited(request, "blob.delete", f"{bucket}/{key}", principal) as note:
        deleted = await blocking(ctx.host.blobs.delete, bucket, key, chain_depth=chain_depth_of(request))
        note.detail["deleted"] = deleted
    return JSONResponse({"bucket": request.path_params["bucket"], "key": key, "deleted": deleted})


async def list_blobs(request: Request) -> Response:
    """GET /v1/blobs/{bucket}[?prefix=&after=&limit=1000]: objects in key order; `next` continues."""
    ctx = context_of(request)
    bucket = _bucket(request)
    await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    limit = query_int(request, "limit", MAX_LIST_LIMIT, 1, MAX_LIST_LIMIT)
    prefix, after = request.query_params.get("prefix", ""), request.query_params.get("after", "")
    objects = await blocking(ctx.host.blobs.list, bucket, prefix, limit, after)
    name = request.path_params["bucket"]
    return JSONResponse(
        {
            "bucket": name,
            "objects": [_info_json(i, name) for i in objects],
            "next": objects[-1].key if len(objects) == limit else None,
        }
    )
