"""Blob objects over HTTP for operators (docs/api.md, Blobs): thin handlers over `Host.blobs`.

Both directions stream: an upload is written on in chunks as it arrives (its route is `streamed`:
the size limit is enforced while it streams, its deadline moves with its progress, and nothing is
visible unless the whole body arrived), a download is read out in chunks. Like queues, blobs of a
namespace are its admins' (the namespaced routes address another namespace's).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..control.auth import ADMIN
from ..errors import NotFound
from ..names import RESOURCE
from ..namespaces import qualify
from ..stores.blobs import MAX_LIST_LIMIT, BlobInfo, BlobReader, require_key
from ..stores.errors import InvalidArgument
from .context import blocking, context_of, namespace_of
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
    """GET /v1/blobs/{bucket}/{key}: the object, streamed, with its type, length and sha256."""
    ctx = context_of(request)
    bucket, key = _bucket(request), _key(request)
    await ctx.authorize(request, ADMIN, namespace=namespace_of(request))
    reader = await blocking(ctx.host.blobs.open, bucket, key)
    if reader is None:
        raise NotFound(f"bucket '{request.path_params['bucket']}' has no object {key!r}; `fnhost blobs ls` lists them")
    info = reader.info
    headers = {
        "content-length": str(info.size),
        "etag": f'"{info.sha256}"',
        "x-fnhost-sha256": info.sha256,
        "x-fnhost-updated-at": f"{info.updated_at:.3f}",
    }
    if request.method == "HEAD":
        await blocking(reader.close)
        return Response(headers=headers, media_type=info.content_type)
    return StreamingResponse(_chunks(reader), headers=headers, media_type=info.content_type)


async def _chunks(reader: BlobReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await blocking(reader.read, WRITE_BYTES):
            yield chunk
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
