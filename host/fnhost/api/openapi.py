"""The OpenAPI 3.1 document of the API, built from one table of endpoints (`ENDPOINTS`).

Each row says method, path, scope, what the body and the success response are; the document adds
the shared error responses, path parameters and security from that, so a new endpoint is one row.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from .paths import FUNCTION_URL, NAMESPACED_FUNCTION_URL, in_namespace, is_namespaced

JSON = "application/json"
BINARY = "application/octet-stream"
ZIP = "application/zip"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    scope: str | None  # None: no key needed
    ok_status: int = 200
    ok_schema: str | None = None  # components/schemas name, or None for raw bytes
    ok_media: str = JSON
    body: tuple[str, str] | None = None  # (media type, schema name or "binary")
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    errors: tuple[int, ...] = ()
    mutating: bool = False
    extra_ok: dict[int, str] = field(default_factory=dict)
    tag: str = "functions"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("get", "/healthz", "healthz", "Liveness and load", None, ok_schema="Health", tag="operations"),
    Endpoint(
        "get",
        "/readyz",
        "readyz",
        "Ready: the database reachable, its schema current",
        None,
        ok_schema="Ready",
        errors=(503,),
        tag="operations",
    ),
    Endpoint(
        "get",
        "/metrics",
        "metrics",
        "Prometheus metrics (text exposition format)",
        None,
        ok_media="text/plain",
        tag="operations",
    ),
    Endpoint(
        "get", "/v1/openapi.json", "openapi", "This document", None, ok_schema="Object", tag="operations"
    ),
    Endpoint("get", "/v1/functions", "listFunctions", "List functions", "read", ok_schema="FunctionList"),
    Endpoint(
        "put",
        "/v1/functions/{name}",
        "deployFunction",
        "Deploy a bundle (zip with fnhost.toml and the wasm) as a new version",
        "deploy",
        ok_status=201,
        ok_schema="Deployed",
        body=(ZIP, "binary"),
        query=(("live", "boolean", "false: record the version without moving `live` (POST /v1/releases moves it)"),),
        errors=(400, 409, 413),
        mutating=True,
        extra_ok={200: "The same bundle was already deployed: no new version"},
    ),
    Endpoint(
        "get",
        "/v1/functions/{name}",
        "getFunction",
        "Describe a function",
        "read",
        ok_schema="Object",
        errors=(404,),
    ),
    Endpoint(
        "delete",
        "/v1/functions/{name}",
        "deleteFunction",
        "Delete a function, all versions and aliases",
        "deploy",
        ok_schema="Deleted",
        errors=(404,),
        mutating=True,
    ),
    Endpoint(
        "get",
        "/v1/functions/{name}/versions",
        "listVersions",
        "List a function's versions",
        "read",
        ok_schema="VersionList",
        errors=(404,),
    ),
    Endpoint(
        "put",
        "/v1/functions/{name}/aliases/{alias}",
        "setAlias",
        "Point an alias at a version",
        "deploy",
        ok_schema="Alias",
        body=(JSON, "AliasRequest"),
        errors=(400, 404),
        mutating=True,
    ),
    Endpoint(
        "delete",
        "/v1/functions/{name}/aliases/{alias}",
        "deleteAlias",
        "Remove an alias; for `live`, unpin it so that it follows the newest version again",
        "deploy",
        ok_schema="AliasRemoved",
        errors=(404,),
        mutating=True,
    ),
    Endpoint(
        "post",
        "/v1/functions/{name}/invoke",
        "invokeFunction",
        "Invoke the event handler; the body is the payload, the response the output. With the header "
        "`X-Fnhost-Invocation-Type: Event` the event is stored and answered 202 at once (docs/events.md); "
        "`X-Fnhost-Idempotency-Key` makes a repeat within the window return the same invocation",
        "invoke",
        ok_schema=None,
        ok_media=BINARY,
        body=(BINARY, "binary"),
        query=(("qualifier", "string", "version number or alias; default `live`"),),
        errors=(400, 404, 413, 429, 502, 504),
        extra_ok={202: "Accepted (invocation type Event): {id, function, status, location}"},
    ),
    Endpoint(
        "get",
        "/v1/functions/{name}/invocations",
        "listInvocations",
        "Recent invocations, newest first",
        "read",
        ok_schema="InvocationList",
        query=(
            ("limit", "integer", "1..1000, default 50"),
            ("before", "string", "`next_before` of the previous page"),
            ("outcome", "string", "only invocations with this outcome (`ok`, `timeout`...)"),
        ),
        errors=(400, 404),
    ),
    Endpoint(
        "get",
        "/v1/functions/{name}/invocations/follow",
        "followInvocations",
        "New invocation records as they are written, as NDJSON; the last line is "
        '{"end": {"reason": "max_s" | "stopping" | "revoked", "after": CURSOR}}',
        "read",
        ok_media="application/x-ndjson",
        query=(
            ("since", "string", "an invocation id of the function: start after it"),
            ("after", "number", "the `after` cursor of a previous stream's end line"),
            ("max_s", "number", "seconds this stream may last, at most the server's cap (25)"),
        ),
        errors=(400, 404, 503),
    ),
    Endpoint(
        "get",
        "/v1/invocations/{id}",
        "getInvocation",
        "One invocation: outcome, REPORT line, logs; for an async invoke's id, its status and attempts",
        "read",
        ok_schema="Invocation",
        errors=(404,),
    ),
    Endpoint(
        "post",
        "/v1/releases",
        "release",
        "Point several aliases of several functions at versions, all or none (fnhost up's second phase)",
        "deploy",
        ok_schema="Released",
        body=(JSON, "ReleaseRequest"),
        errors=(400, 404, 409),
        mutating=True,
    ),
    Endpoint(
        "get",
        "/v1/usage",
        "getUsage",
        "Usage per function and hour or day: invocations, errors by outcome, duration p50/p99, billed GB-s, fuel",
        "read",
        ok_schema="Usage",
        query=(
            ("function", "string", "one function (default: every one the key may read)"),
            ("period", "string", "hour (default) or day"),
            ("since", "string", "Unix seconds or ISO 8601; default 24 hours (period=day: 30 days) before until"),
            ("until", "string", "Unix seconds or ISO 8601; default now"),
        ),
        errors=(400, 404),
    ),
    Endpoint("get", "/v1/queues", "listQueues", "Queues: depth, in flight, oldest message age", "admin",
             ok_schema="Object", tag="events"),
    Endpoint("post", "/v1/queues/{queue}/messages", "sendMessage", "Publish a message (the body)", "admin",
             ok_status=201, ok_schema="Object", body=(BINARY, "binary"), errors=(400, 413), mutating=True,
             tag="events"),
    Endpoint("get", "/v1/queues/{queue}/messages", "peekMessages", "The oldest messages, not claimed", "admin",
             ok_schema="Object", query=(("limit", "integer", "1..1000, default 10"),), errors=(400,), tag="events"),
    Endpoint("delete", "/v1/queues/{queue}/messages", "purgeQueue", "Delete every message of a queue", "admin",
             ok_schema="Object", errors=(400,), mutating=True, tag="events"),
    Endpoint("get", "/v1/blobs/{bucket}", "listBlobs", "Objects of a bucket, in key order", "admin",
             ok_schema="Object", query=(("prefix", "string", "keys starting with this"),
                                        ("after", "string", "keys after this one (the last page's `next`)"),
                                        ("limit", "integer", "1..1000, default 1000")), errors=(400,), tag="blobs"),
    Endpoint("put", "/v1/blobs/{bucket}/{key}", "putBlob", "Store an object (the body, streamed)", "admin",
             ok_status=201, ok_schema="Object", body=(BINARY, "binary"), errors=(400, 408, 413), mutating=True,
             tag="blobs"),
    Endpoint("get", "/v1/blobs/{bucket}/{key}", "getBlob", "An object's content, streamed (`Range`, `If-None-Match`)",
             "admin", ok_media=BINARY, errors=(400, 404, 416), tag="blobs",
             extra_ok={206: "One byte range of the object (`Range`), with `Content-Range`",
                       304: "Not modified: `If-None-Match` names its ETag (the sha256)"}),
    Endpoint("delete", "/v1/blobs/{bucket}/{key}", "deleteBlob", "Delete an object", "admin",
             ok_schema="Object", errors=(400,), mutating=True, tag="blobs"),
    Endpoint("post", "/v1/queues/{queue}/redrive", "redriveQueue",
             "Move a dead-letter queue's messages back to the queue they came from (or `to`)", "admin",
             ok_schema="Object", body=(JSON, "Object"), errors=(400, 404, 409), mutating=True, tag="events"),
    Endpoint("get", "/v1/triggers", "listTriggers", "Queue triggers (event-source mappings)", "read",
             ok_schema="Object", tag="events"),
    Endpoint("get", "/v1/schedules", "listSchedules", "Schedules with their next and last tick", "read",
             ok_schema="Object", tag="events"),
    Endpoint(
        "get",
        "/v1/secrets",
        "listSecrets",
        "Secret names (never values)",
        "admin",
        ok_schema="SecretList",
        tag="admin",
        errors=(405,),
    ),
    Endpoint(
        "put",
        "/v1/secrets/{name}",
        "setSecret",
        "Set a secret (encrypted at rest)",
        "admin",
        ok_schema="Object",
        body=(JSON, "SecretRequest"),
        errors=(400,),
        mutating=True,
        tag="admin",
    ),
    Endpoint(
        "delete",
        "/v1/secrets/{name}",
        "deleteSecret",
        "Delete a secret",
        "admin",
        ok_schema="Deleted",
        errors=(404,),
        mutating=True,
        tag="admin",
    ),
    Endpoint(
        "post",
        "/v1/shares",
        "createShare",
        "Share one kv bucket, secret or queue of this namespace with another namespace",
        "admin",
        ok_status=201,
        ok_schema="Object",
        body=(JSON, "ShareRequest"),
        errors=(400,),
        mutating=True,
        tag="admin",
    ),
    Endpoint("get", "/v1/shares", "listShares", "Shares this namespace made or received", "admin",
             ok_schema="Object", tag="admin", errors=(405,)),
    Endpoint("delete", "/v1/shares/{id}", "revokeShare", "Revoke a share (applies at the next call)", "admin",
             ok_schema="Object", errors=(404,), mutating=True, tag="admin"),
    Endpoint(
        "post",
        "/v1/keys",
        "createKey",
        "Create an API key; the token is in this response only",
        "admin",
        ok_status=201,
        ok_schema="CreatedKey",
        body=(JSON, "KeyRequest"),
        errors=(400,),
        mutating=True,
        tag="admin",
    ),
    Endpoint(
        "get",
        "/v1/keys",
        "listKeys",
        "List API keys (never tokens)",
        "admin",
        ok_schema="KeyList",
        tag="admin",
        errors=(405,),
    ),
    Endpoint(
        "delete",
        "/v1/keys/{id}",
        "revokeKey",
        "Revoke an API key",
        "admin",
        ok_schema="Object",
        errors=(404,),
        mutating=True,
        tag="admin",
    ),
    Endpoint(
        "get",
        "/v1/audit",
        "listAudit",
        "The audit log, oldest first, paginated",
        "admin",
        ok_schema="AuditPage",
        query=(
            ("limit", "integer", "1..1000, default 100"),
            ("after", "integer", "only entries with a higher id (the previous page's next_after)"),
        ),
        errors=(400, 405),
        tag="admin",
    ),
    Endpoint(
        "get",
        "/v1/audit/verify",
        "verifyAudit",
        "Recompute the audit log's hash chain",
        "admin",
        ok_schema="Object",
        tag="admin",
        errors=(405,),
    ),
)
FUNCTION_URL_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")

_ERROR_TEXT = {
    400: "Malformed request, manifest or bundle",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks the scope, or is not granted this function",
    404: "No such function, version, alias, invocation, secret or key",
    405: "Method not allowed here, or the server is read-only",
    409: "Conflicts with the current state",
    408: "The request body did not arrive within the server's body timeout",
    413: "Body over the server's limit",
    416: "The `Range` starts past the end of the object (`Content-Range: bytes */SIZE` gives its size)",
    429: "Too many invocations in flight; retry after `Retry-After` seconds",
    500: "The function's HTTP handler returned an error (function URLs), or a server fault",
    502: "The function failed: guest_error, guest_trap, fuel_exhausted, memory_limit or denied",
    503: "Not ready, the database unavailable for now, or as many request bodies in flight as the server "
    "allows; retry after `Retry-After` seconds",
    504: "The function ran past its timeout",
    507: "The disk holding the data dir is full",
}

_OBJ: dict[str, Any] = {"type": "object"}
SCHEMAS: dict[str, Any] = {
    "Object": {"type": "object", "additionalProperties": True},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "error kind or invocation outcome"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                    "invocation_id": {"type": "string"},
                },
            }
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "read_only": {"type": "boolean"},
            "invocations_in_flight": {"type": "integer"},
        },
    },
    "Ready": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ready", "not ready"]}, "reason": {"type": "string"}},
    },
    "Deployed": {
        "type": "object",
        "required": ["name", "version", "sha256", "created"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "sha256": {"type": "string"},
            "created": {"type": "boolean", "description": "false: the same bundle was already deployed"},
            "created_at": {},
            "live_version": {
                "type": ["integer", "null"],
                "description": "what `live` serves now (pinned or live=false: maybe not this one; null: nothing yet)",
            },
        },
    },
    "AliasRemoved": {
        "type": "object",
        "required": ["name", "alias"],
        "properties": {
            "name": {"type": "string"},
            "alias": {"type": "string"},
            "deleted": {"type": "boolean"},
            "version": {"type": "integer", "description": "live: the newest version, which it follows again"},
            "pinned": {"type": "boolean"},
        },
    },
    "Deleted": {
        "type": "object",
        "properties": {"deleted": {"type": "boolean"}},
        "additionalProperties": True,
    },
    "FunctionList": {"type": "object", "properties": {"functions": {"type": "array", "items": _OBJ}}},
    "VersionList": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": _OBJ}},
    },
    "AliasRequest": {
        "type": "object",
        "required": ["version"],
        "properties": {"version": {"type": "integer"}},
    },
    "Alias": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "alias": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
    "Invocation": {
        "type": "object",
        "properties": {
            "invocation_id": {"type": "string"},
            "function": {"type": "string"},
            "version": {"type": "integer"},
            "outcome": {"type": "string"},
            "report": {"type": "string"},
            "outbound": {
                "type": "array",
                "description": "its outbound HTTP requests, one per redirect hop",
                "items": {
                    "type": "object",
                    "properties": {
                        "method": {"type": "string"},
                        "origin": {"type": "string"},
                        "grant": {"type": ["string", "null"]},
                        "status": {"type": ["integer", "null"]},
                        "bytes_sent": {"type": "integer"},
                        "bytes_received": {"type": "integer"},
                        "ms": {"type": "number"},
                        "error": {"type": ["string", "null"]},
                    },
                },
            },
            "logs": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": True,
    },
    "InvocationList": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "invocations": {"type": "array", "items": {"$ref": "#/components/schemas/Invocation"}},
            "next_before": {"type": ["string", "null"], "description": "the `before` of the next page"},
        },
    },
    "ReleaseRequest": {
        "type": "object",
        "required": ["aliases"],
        "properties": {
            "aliases": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["function", "alias", "version"],
                    "properties": {
                        "function": {"type": "string"},
                        "alias": {"type": "string"},
                        "version": {"type": "integer"},
                    },
                },
            }
        },
    },
    "Released": {
        "type": "object",
        "properties": {
            "released": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "function": {"type": "string"},
                        "alias": {"type": "string"},
                        "previous": {"type": ["integer", "null"], "description": "null: the alias is new"},
                        "version": {"type": "integer"},
                    },
                },
            }
        },
    },
    "UsageRow": {
        "type": "object",
        "properties": {
            "function": {"type": "string"},
            "period": {"type": "string", "enum": ["hour", "day"]},
            "start": {"type": "integer", "description": "Unix seconds (UTC) the bucket starts at"},
            "start_iso": {"type": "string"},
            "invocations": {"type": "integer"},
            "errors": {"type": "integer", "description": "outcomes other than ok and throttled"},
            "throttles": {"type": "integer"},
            "outcomes": {"type": "object", "additionalProperties": {"type": "integer"}},
            "duration_ms": {
                "type": "object",
                "properties": {k: {"type": ["number", "null"]} for k in ("p50", "p99", "max", "mean")},
            },
            "billed_ms": {"type": "integer"},
            "gb_seconds": {"type": "number", "description": "billed ms x memory MB / 1024 / 1000 (Lambda's formula)"},
            "fuel": {"type": "integer"},
        },
    },
    "Usage": {
        "type": "object",
        "properties": {
            "namespace": {"type": "string"},
            "period": {"type": "string"},
            "since": {"type": "number"},
            "until": {"type": "number"},
            "usage": {"type": "array", "items": {"$ref": "#/components/schemas/UsageRow"}},
            "totals": {"type": "array", "items": {"$ref": "#/components/schemas/UsageRow"}},
        },
    },
    "SecretRequest": {"type": "object", "required": ["value"], "properties": {"value": {"type": "string"}}},
    "SecretList": {
        "type": "object",
        "properties": {"secrets": {"type": "array", "items": {"type": "string"}}},
    },
    "KeyRequest": {
        "type": "object",
        "required": ["scopes"],
        "properties": {
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string", "enum": ["admin", "deploy", "invoke"]}},
            "functions": {"type": ["array", "null"], "items": {"type": "string"}},
            "namespace": {"type": ["string", "null"], "description": "absent: global (admin) or default"},
            "may_grant": {"type": "array", "items": {"type": "string"}, "description": "e.g. secret:billing-*"},
        },
    },
    "ShareRequest": {
        "type": "object",
        "required": ["kind", "name", "with"],
        "properties": {
            "kind": {"type": "string", "enum": ["kv", "secret", "queue"]},
            "name": {"type": "string"},
            "with": {"type": "string", "description": "the namespace it is shared with"},
        },
    },
    "CreatedKey": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "token": {"type": "string"}},
        "additionalProperties": True,
    },
    "KeyList": {"type": "object", "properties": {"keys": {"type": "array", "items": _OBJ}}},
    "AuditPage": {
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": _OBJ},
            "next_after": {"type": ["integer", "null"]},
        },
    },
}


def openapi_document(*, read_only: bool = False, version: str = "0.1.0") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method] = _operation(ep, read_only)
        if is_namespaced(ep.path):  # the same endpoint in a namespace other than `default`
            twin = dataclasses.replace(
                ep, path=in_namespace(ep.path), operation_id=ep.operation_id + "InNamespace"
            )
            paths.setdefault(twin.path, {})[twin.method] = _operation(twin, read_only)
    for base in (FUNCTION_URL, NAMESPACED_FUNCTION_URL):
        for suffix in ("", "/{path}"):
            paths[base + suffix] = {m: _function_url_operation(m, base, suffix) for m in FUNCTION_URL_METHODS}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fnhost",
            "version": version,
            "description": "Serverless WebAssembly functions. Errors share one shape (Error); every "
            "response carries X-Request-Id. See docs/api.md."
            + (" This server is read-only." if read_only else ""),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("functions", "function-urls", "events", "blobs", "admin", "operations")],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An fnhost API key token"}
            },
            "headers": {
                "X-Request-Id": {"schema": {"type": "string"}, "description": "echoed or generated"},
                "X-Fnhost-Invocation-Id": {"schema": {"type": "string"}},
                "X-Fnhost-Outcome": {"schema": {"type": "string"}},
                "X-Fnhost-Version": {"schema": {"type": "string"}},
                "Retry-After": {"schema": {"type": "integer"}},
            },
        },
    }


def _params(path: str, query: tuple[tuple[str, str, str], ...] = ()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"{(\w+)}", path)
    ]
    out += [
        {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
        for n, t, d in query
    ]
    return out


def _error(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status == 429:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {
        "description": _ERROR_TEXT[status],
        "headers": headers,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _content(media: str, schema: str | None) -> dict[str, Any]:
    if schema is None or schema == "binary":
        return {media: {"schema": {"type": "string", "format": "binary"}}}
    return {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


_INVOCATION_HEADERS = {
    h: {"$ref": f"#/components/headers/{h}"}
    for h in ("X-Request-Id", "X-Fnhost-Invocation-Id", "X-Fnhost-Outcome", "X-Fnhost-Version")
}


def _operation(ep: Endpoint, read_only: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Success", "content": _content(ep.ok_media, ep.ok_schema)}
    if ep.operation_id == "invokeFunction":
        ok["headers"] = _INVOCATION_HEADERS
    responses: dict[str, Any] = {str(ep.ok_status): ok}
    for status, text in ep.extra_ok.items():
        responses[str(status)] = {"description": text, "content": _content(ep.ok_media, ep.ok_schema)}
    statuses = set(ep.errors)
    if ep.scope is not None:
        statuses |= {401, 403}
    if ep.mutating:
        statuses.add(405)
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    op: dict[str, Any] = {
        "operationId": ep.operation_id,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": _params(ep.path, ep.query),
        "responses": responses,
        "security": [{"apiKey": []}] if ep.scope else [],
    }
    if ep.scope:
        needs = "`deploy` or `invoke` for the function" if ep.scope == "read" else f"`{ep.scope}`"
        op["description"] = f"Needs a key with scope {needs}."
        if ep.mutating and read_only:
            op["description"] += " Refused (405) on this read-only server."
    if ep.body:
        op["requestBody"] = {"required": True, "content": _content(*ep.body)}
    return op


def _function_url_operation(method: str, base: str, suffix: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "default": {
            "description": "The function's own response: status, headers and body as it returned them"
        }
    }
    for status in (401, 403, 404, 413, 429, 500, 502, 504):
        responses[str(status)] = _error(status)
    op: dict[str, Any] = {
        "operationId": f"functionUrl{method.capitalize()}{'Path' if suffix else ''}"
        + ("InNamespace" if base != FUNCTION_URL else ""),
        "summary": "The function's HTTP handler (its function URL)",
        "description": "Public functions (`[http] public = true`) need no key; others need scope `invoke` "
        "for the function. The path after the function name and the query reach the function. "
        "`{name}` may carry a qualifier, `hello@prod` or `hello@3`: public only if that version and the "
        "live one both are.",
        "tags": ["function-urls"],
        "parameters": _params(base + suffix),
        "responses": responses,
        "security": [{}, {"apiKey": []}],
    }
    if method in ("post", "put", "patch", "delete"):
        op["requestBody"] = {
            "required": False,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    return op
