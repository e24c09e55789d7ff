"""`fnhost.Client`: the HTTP API from Python. The `fnhost` CLI is a thin layer over it.

    from fnhost import Client

    with Client("http://127.0.0.1:8080", token) as api:
        api.deploy("hello", open("hello.zip", "rb").read())
        print(api.invoke("hello", b'{"name": "you"}').output)
        for record in api.follow_invocations("hello"):   # new invocations as they finish
            print(record["report"])

Every method is one request (`rollback` reads first to pick the version before live). A refusal
raises `ApiError` carrying the server's error code, message and HTTP status; an unreachable server
raises it with `status` None and code ``unreachable``. Namespaced calls go to the client's
`namespace` (docs/api.md, "Namespaces").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast
from urllib.parse import quote

import httpx

from .api.paths import in_namespace, is_namespaced
from .errors import FnhostError

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(FnhostError):
    """A request the server refused (`status` its HTTP status, `code` its error code), or one that
    never reached it (`status` None, `code` ``unreachable``)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        invocation_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.invocation_id = invocation_id
        self.request_id = request_id
        self.http_status = status or 502


class Alias(TypedDict):
    alias: str
    version: int
    pinned: bool


class Function(TypedDict):
    name: str
    created_at: float
    latest_version: int
    aliases: list[Alias]


class VersionInfo(TypedDict):
    name: str
    version: int
    sha256: str
    created_at: float
    created_by: str | None
    manifest: dict[str, Any]


class Deployed(TypedDict):
    name: str
    version: int
    sha256: str
    created: bool
    created_at: float
    live_version: int | None
    """Not `version` when `live` is pinned to an older one, or after `deploy(live=False)` (None: nothing
    of the function is live yet)."""


Invocation = dict[str, Any]
"""An invocation record as the API answers it: the fields of `fnhost.stores.InvocationRecord`
(id, function, version, trigger, outcome, error, started_at, duration_ms, ..., logs, report)."""


@dataclass(frozen=True)
class InvokeResult:
    """A successful synchronous invoke: the event handler's output and what ran it."""

    output: bytes
    invocation_id: str
    version: int
    outcome: str


class Client:
    """The fnhost HTTP API at `url`, authenticated with the API key `token`, in `namespace`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout_s: float = 30.0,
        read_timeout_s: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace if namespace not in (None, "", "default") else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, read=read_timeout_s),
            transport=transport,
        )

    @classmethod
    def from_env(
        cls, url: str | None = None, token: str | None = None, namespace: str | None = None, **options: Any
    ) -> Client:
        """A client configured as the CLI is: arguments first, else ``FNHOST_URL``, ``FNHOST_TOKEN``
        (``@FILE`` reads the token from a file) and ``FNHOST_NAMESPACE``; `options` as for `Client`."""
        token = token or os.environ.get("FNHOST_TOKEN") or None
        if token is not None and token.startswith("@"):
            path = token[1:]
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ApiError(None, "invalid_token", f"cannot read the token file {path}: {e.strerror}") from None
        namespace = namespace or os.environ.get("FNHOST_NAMESPACE") or None
        return cls(url or os.environ.get("FNHOST_URL") or DEFAULT_URL, token, namespace=namespace, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the transport ---------------------------------------------------------------------------------
    def path(self, path: str) -> str:
        """`path` in this client's namespace: `/v1/functions/x` -> `/v1/namespaces/NS/functions/x`."""
        if self.namespace is not None and is_namespaced(path):
            return in_namespace(path).replace("{namespace}", quote(self.namespace, safe=""))
        return path

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to `path` (namespaced as `path` says); `ApiError` unless it succeeded."""
        try:
            response = self._http.request(method, self.path(path), **kwargs)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def _unreachable(self, e: Exception) -> ApiError:
        return ApiError(
            None, "unreachable", f"cannot reach fnhost at {self.url} ({e}); is `fnhost serve` running there?"
        )

    # functions -------------------------------------------------------------------------------------
    def deploy(self, name: str, bundle: bytes, *, live: bool = True) -> Deployed:
        """Upload a bundle zip (`fnhost build`); the server validates and compiles it before answering.
        `live=False`: the new version serves nothing until `release` points `live` at it."""
        headers = {"Content-Type": "application/zip"}
        params = {} if live else {"live": "false"}
        return cast(Deployed, self.json("PUT", _fn(name), content=bundle, headers=headers, params=params))

    def release(self, moves: Sequence[tuple[str, str, int]]) -> list[dict[str, Any]]:
        """Point each (function, alias, version) at once, all or none (`POST /v1/releases`): for each,
        {function, alias, previous, version}."""
        body = {"aliases": [{"function": f, "alias": a, "version": v} for f, a, v in moves]}
        return cast(list[dict[str, Any]], self.json("POST", "/v1/releases", json=body)["released"])

    def list_functions(self) -> list[Function]:
        return cast(list[Function], self.json("GET", "/v1/functions")["functions"])

    def get_function(self, name: str) -> Function:
        return cast(Function, self.json("GET", _fn(name)))

    def delete_function(self, name: str) -> None:
        self.request("DELETE", _fn(name))

    def versions(self, name: str) -> list[VersionInfo]:
        return cast(list[VersionInfo], self.json("GET", _fn(name, "versions"))["versions"])

    def aliases(self, name: str) -> list[Alias]:
        return self.get_function(name)["aliases"]

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at `version` (for `live`: pin it there)."""
        self.request("PUT", _fn(name, "aliases", alias), json={"version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias`; for `live`, unpin it (see `unpin`)."""
        self.request("DELETE", _fn(name, "aliases", alias))

    def unpin(self, name: str) -> int:
        """Make `live` follow the newest version again; the version it serves now."""
        return int(self.json("DELETE", _fn(name, "aliases", "live"))["version"])

    def rollback(self, name: str, version: int | None = None) -> int:
        """Pin `live` to `version`, by default the newest one older than what live serves; that version."""
        if version is None:
            live = next(a["version"] for a in self.aliases(name) if a["alias"] == "live")
            older = [v["version"] for v in self.versions(name) if v["version"] < live]
            if not older:
                raise ApiError(
                    None,
                    "no_older_version",
                    f"{name}: live serves version {live}, there is no older one to roll back to",
                )
            version = max(older)
        self.set_alias(name, "live", version)
        return version

    # invoking --------------------------------------------------------------------------------------
    def invoke(self, name: str, payload: bytes = b"", *, qualifier: str | int | None = None) -> InvokeResult:
        """Run the event handler and wait for its output (a failed invocation raises `ApiError` with
        its outcome as the code and its `invocation_id`)."""
        params = {"qualifier": str(qualifier)} if qualifier is not None else {}
        response = self.request("POST", _fn(name, "invoke"), content=payload, params=params)
        h = response.headers
        return InvokeResult(
            response.content, h.get("x-fnhost-invocation-id", ""), int(h.get("x-fnhost-version", "0")),
            h.get("x-fnhost-outcome", ""),
        )  # fmt: skip

    def invoke_async(
        self,
        name: str,
        payload: bytes = b"",
        *,
        qualifier: str | int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Store an event for the function and return at once (202): {id, status, ...}."""
        headers = {"X-Fnhost-Invocation-Type": "Event"}
        if idempotency_key is not None:
            headers["X-Fnhost-Idempotency-Key"] = idempotency_key
        params = {"qualifier": str(qualifier)} if qualifier is not None else {}
        return cast(dict[str, Any], self.json("POST", _fn(name, "invoke"), content=payload, params=params,
                                              headers=headers))  # fmt: skip

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        """One invocation record, or an async invoke's status (`async` true)."""
        return cast(dict[str, Any], self.json("GET", f"/v1/invocations/{quote(invocation_id, safe='')}"))

    def invocations(self, name: str, *, limit: int = 50, before: str | None = None) -> list[Invocation]:
        """The newest `limit` invocation records of a function, newest first (`before`: older than that id)."""
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        return cast(list[Invocation], self.json("GET", _fn(name, "invocations"), params=params)["invocations"])

    def follow_invocations(
        self, name: str, *, since: str | None = None, stream_s: float | None = None
    ) -> Iterator[Invocation]:
        """Invocation records of a function as they are written (on any node), oldest first, from
        now or from after the invocation `since`. Runs until the server stops (then returns) or the
        caller stops iterating; each of the server's bounded streams (at most `stream_s` seconds,
        else the server's cap) is followed by the next from where it ended, without repeats."""
        params: dict[str, Any] = {"since": since} if since is not None else {}
        if stream_s is not None:
            params["max_s"] = stream_s
        recent: dict[str, None] = {}  # ids already yielded (a stream re-reads a moment back)
        while True:
            end = None
            for line in self._stream_lines(self.path(_fn(name, "invocations", "follow")), params):
                item = json.loads(line)
                if "end" in item:
                    end = item["end"]
                    break
                if item["id"] in recent:
                    continue
                recent[item["id"]] = None
                if len(recent) > 10_000:
                    del recent[next(iter(recent))]
                yield cast(Invocation, item)
            if end is not None and end["reason"] == "revoked":
                raise ApiError(403, "forbidden", f"this API key may no longer read {name}; the follow ended")
            if end is None or end["reason"] != "max_s":
                return  # the server is stopping (or the stream ended without saying why)
            params = {k: v for k, v in params.items() if k != "since"} | {"after": end["after"]}

    def _stream_lines(self, path: str, params: dict[str, Any]) -> Iterator[str]:
        """The non-blank lines of a streamed GET (blank lines would be keep-alives)."""
        try:
            with self._http.stream("GET", path, params=params, timeout=httpx.Timeout(30.0, read=120.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield line
        except httpx.TransportError as e:
            raise self._unreachable(e) from None

    # blobs -----------------------------------------------------------------------------------------
    def put_blob(
        self, bucket: str, key: str, data: bytes | Iterable[bytes], content_type: str | None = None
    ) -> dict[str, Any]:
        """Store an object (bytes, or chunks streamed as they come); its metadata."""
        headers = {"content-type": content_type} if content_type else {}
        timeout = httpx.Timeout(30.0, write=None, read=None)  # the server bounds a streamed upload itself
        info = self.json("PUT", _blob(bucket, key), content=data, headers=headers, timeout=timeout)
        return cast(dict[str, Any], info)

    def get_blob(self, bucket: str, key: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The object's content, streamed (`ApiError` 404 if there is none). It is checked against
        the sha256 the server announced: a download cut short or not matching it raises `ApiError`
        (code ``incomplete_download``) after the last chunk, so a caller never takes it as whole."""
        received, digest = 0, hashlib.sha256()
        try:
            with self._http.stream("GET", self.path(_blob(bucket, key)), timeout=httpx.Timeout(30.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                announced = response.headers.get("x-fnhost-sha256")
                try:
                    for chunk in response.iter_bytes(chunk_bytes):
                        received += len(chunk)
                        digest.update(chunk)
                        yield chunk
                except httpx.TransportError as e:
                    raise ApiError(
                        None,
                        "incomplete_download",
                        f"the download of {bucket}/{key} stopped after {received} bytes ({e}); the server "
                        "ends a download early when the stored object is damaged (its log says so): retry, "
                        "or put the object again",
                    ) from None
                if announced is not None and digest.hexdigest() != announced:
                    raise ApiError(
                        None,
                        "incomplete_download",
                        f"the download of {bucket}/{key} ({received} bytes) does not match its sha256 "
                        f"{announced}: retry",
                    )
        except httpx.TransportError as e:
            raise self._unreachable(e) from None

    def blobs(self, bucket: str, *, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every object of a bucket with `prefix`, in key order (page after page)."""
        params: dict[str, Any] = {"prefix": prefix}
        while True:
            page = self.json("GET", f"/v1/blobs/{quote(bucket, safe='')}", params=params)
            yield from page["objects"]
            if page["next"] is None:
                return
            params["after"] = page["next"]

    def delete_blob(self, bucket: str, key: str) -> bool:
        """Remove an object; whether there was one."""
        return bool(self.json("DELETE", _blob(bucket, key))["deleted"])

    # queues, triggers, schedules -------------------------------------------------------------------
    def queues(self) -> list[dict[str, Any]]:
        """Queues holding messages: depth, in flight, age of the oldest."""
        return cast(list[dict[str, Any]], self.json("GET", "/v1/queues")["queues"])

    def send_message(self, queue: str, body: bytes) -> str:
        """Publish a message; its id."""
        return str(self.json("POST", f"/v1/queues/{quote(queue, safe='')}/messages", content=body)["id"])

    def peek_messages(self, queue: str, *, limit: int = 10) -> list[dict[str, Any]]:
        path = f"/v1/queues/{quote(queue, safe='')}/messages"
        return cast(list[dict[str, Any]], self.json("GET", path, params={"limit": limit})["messages"])

    def purge_queue(self, queue: str) -> int:
        """Delete every message of a queue; how many there were."""
        return int(self.json("DELETE", f"/v1/queues/{quote(queue, safe='')}/messages")["deleted"])

    def redrive_queue(self, queue: str, *, to: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Move a dead-letter queue's messages back to the queue its trigger reads (or `to`):
        {queue, to, moved: [ids], count, remaining}."""
        body: dict[str, Any] = {"limit": limit} if to is None else {"to": to, "limit": limit}
        return cast(dict[str, Any], self.json("POST", f"/v1/queues/{quote(queue, safe='')}/redrive", json=body))

    def queue_triggers(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.json("GET", "/v1/triggers")["queue"])

    def schedules(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.json("GET", "/v1/schedules")["schedules"])

    # usage ----------------------------------------------------------------------------------------
    def usage(
        self,
        *,
        function: str | None = None,
        period: str = "hour",
        since: float | str | None = None,
        until: float | str | None = None,
    ) -> dict[str, Any]:
        """Usage per function and hour or day (`GET /v1/usage`): {usage: [rows], totals: [per function], ...};
        `since`/`until` are Unix seconds or ISO 8601."""
        given = {"function": function, "period": period, "since": since, "until": until}
        params = {k: str(v) for k, v in given.items() if v is not None}
        return cast(dict[str, Any], self.json("GET", "/v1/usage", params=params))

    # secrets, keys, shares, audit ------------------------------------------------------------------
    def secrets(self) -> list[str]:
        return cast(list[str], self.json("GET", "/v1/secrets")["secrets"])

    def set_secret(self, name: str, value: str) -> None:
        self.request("PUT", f"/v1/secrets/{quote(name, safe='')}", json={"value": value})

    def delete_secret(self, name: str) -> None:
        self.request("DELETE", f"/v1/secrets/{quote(name, safe='')}")

    def create_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        functions: Sequence[str] | None = None,
        may_grant: Sequence[str] | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """A new API key in `namespace` (default this client's; global without one): its record and,
        this once, its `token`."""
        body: dict[str, Any] = {
            "name": name,
            "scopes": list(scopes),
            "functions": list(functions) if functions else None,
        }
        if namespace or self.namespace:
            body["namespace"] = namespace or self.namespace
        if may_grant:
            body["may_grant"] = list(may_grant)
        return cast(dict[str, Any], self.json("POST", "/v1/keys", json=body))

    def keys(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.json("GET", "/v1/keys")["keys"])

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.json("DELETE", f"/v1/keys/{quote(key_id, safe='')}"))

    def create_share(self, kind: str, resource: str, with_namespace: str) -> dict[str, Any]:
        """Share one kv bucket, secret or queue of this client's namespace with another namespace."""
        body = {"kind": kind, "name": resource, "with": with_namespace}
        return cast(dict[str, Any], self.json("POST", "/v1/shares", json=body))

    def shares(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.json("GET", "/v1/shares")["shares"])

    def revoke_share(self, share_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.json("DELETE", f"/v1/shares/{quote(share_id, safe='')}"))

    def verify_audit(self) -> dict[str, Any]:
        """{ok, checked, reason}: whether the audit log's hash chain is intact."""
        return cast(dict[str, Any], self.json("GET", "/v1/audit/verify"))

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.json("GET", "/healthz"))


def _blob(bucket: str, key: str) -> str:
    """An object's path: the bucket quoted whole, the key's '/' kept (keys look like paths)."""
    return f"/v1/blobs/{quote(bucket, safe='')}/{quote(key, safe='/')}"


def _fn(name: str, *rest: str) -> str:
    """The path of a function's resource, each part quoted (a name is never a path of its own)."""
    return "/".join(["/v1/functions", *(quote(part, safe="@") for part in (name, *rest))])


def error_of(response: httpx.Response) -> ApiError:
    """The server's JSON error (api/errors.py) as an `ApiError`; a non-JSON body is quoted, cut short."""
    try:
        error = response.json()["error"]
        return ApiError(
            response.status_code,
            str(error["code"]),
            str(error["message"]),
            invocation_id=error.get("invocation_id"),
            request_id=error.get("request_id"),
        )
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, f"http_{response.status_code}", response.text[:500])


__all__ = ["DEFAULT_URL", "Alias", "ApiError", "Client", "Deployed", "Function", "Invocation", "InvokeResult",
           "VersionInfo"]  # fmt: skip
