"""Blob objects of a namespace: put, get, ls, rm (streamed both ways, as the API)."""

from __future__ import annotations

import mimetypes
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

from ..client import Client
from ._common import client_options, command, group, print_json, table

CHUNK = 1 << 20

blobs = group("blobs", "Blob objects: put, get, ls, rm.", example="fnhost blobs put uploads in/report.csv report.csv")


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


@command(
    blobs,
    "put",
    example="fnhost blobs put uploads in/photo.jpg photo.jpg\ncat data.bin | fnhost blobs put uploads raw/data.bin",
)
@click.argument("bucket")
@click.argument("key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--content-type", help="its MIME type (default: guessed from FILE's name, else application/octet-stream)")
@client_options
def blobs_put(api: Client, as_json: bool, bucket: str, key: str, file: Path | None, content_type: str | None) -> int:
    """Store FILE (or stdin) as KEY of BUCKET, streamed."""
    if content_type is None and file is not None:
        content_type = mimetypes.guess_type(file.name)[0]
    if file is None:
        info = api.put_blob(bucket, key, _chunks(sys.stdin.buffer), content_type)
    else:
        with open(file, "rb") as f:
            info = api.put_blob(bucket, key, _chunks(f), content_type)
    print_json(info) if as_json else print(f"{bucket}/{key}: {info['size']} bytes, sha256 {info['sha256']}")
    return 0


@command(blobs, "get", example="fnhost blobs get uploads in/photo.jpg -o photo.jpg")
@click.argument("bucket")
@click.argument("key")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write here (default stdout)")
@client_options
def blobs_get(api: Client, as_json: bool, bucket: str, key: str, output: Path | None) -> int:
    """Write KEY of BUCKET to stdout or a file, streamed (a file appears only once complete)."""
    if output is None:
        for chunk in api.get_blob(bucket, key):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    partial = output.with_name(f".{output.name}.partial")
    try:
        with open(partial, "wb") as f:
            for chunk in api.get_blob(bucket, key):
                f.write(chunk)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return 0


@command(blobs, "ls", example="fnhost blobs ls uploads --prefix in/")
@click.argument("bucket")
@click.option("--prefix", default="", help="only keys starting with this")
@client_options
def blobs_ls(api: Client, as_json: bool, bucket: str, prefix: str) -> int:
    """Objects of BUCKET in key order: size, updated, type, key."""
    objects = list(api.blobs(bucket, prefix=prefix))
    if as_json:
        print_json({"bucket": bucket, "objects": objects})
        return 0
    import datetime

    rows = [["SIZE", "UPDATED", "TYPE", "KEY"]]
    for o in objects:
        updated = datetime.datetime.fromtimestamp(o["updated_at"], datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append([str(o["size"]), updated, o["content_type"], o["key"]])
    table(rows)
    return 0


@command(blobs, "rm", example="fnhost blobs rm uploads in/photo.jpg")
@click.argument("bucket")
@click.argument("key")
@client_options
def blobs_rm(api: Client, as_json: bool, bucket: str, key: str) -> int:
    """Delete KEY of BUCKET (a missing one is not an error)."""
    deleted = api.delete_blob(bucket, key)
    if as_json:
        print_json({"bucket": bucket, "key": key, "deleted": deleted})
    else:
        print(f"{bucket}/{key} {'deleted' if deleted else 'did not exist'}")
    return 0


COMMANDS = [blobs]
