/* Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.
 * It answers byte for byte like guests/python/hello. */
#include <stdio.h>

#include "fnhost.h"

/* {"message":"Hello, <name>!"} */
static void greeting(fnhost_buf *out, const char *name, size_t len) {
    fnhost_buf text = {0};
    fnhost_buf_str(&text, "Hello, ");
    fnhost_buf_append(&text, name, len);
    fnhost_buf_str(&text, "!");
    fnhost_buf_str(out, "{\"message\":");
    fnhost_json_string(out, (const char *)text.data, text.len);
    fnhost_buf_str(out, "}");
    fnhost_buf_free(&text);
}

/* Adds "key":"value" (with a leading comma unless first). */
static void field_str(fnhost_buf *out, const char *key, const char *value, size_t len, int first) {
    if (!first) fnhost_buf_str(out, ",");
    fnhost_json_string(out, key, strlen(key));
    fnhost_buf_str(out, ":");
    fnhost_json_string(out, value, len);
}

/* The query's first value of each parameter, in order, as a JSON object (Python's req.query). */
static void query_object(fnhost_buf *out, fnhost_str query) {
    fnhost_buf name = {0}, value = {0}, seen = {0}; /* seen: NUL-separated names */
    fnhost_buf_str(out, "{");
    int first = 1;
    while (fnhost_query_next(&query, &name, &value)) {
        int dup = 0;
        for (size_t at = 0; at < seen.len && !dup; at += strlen((const char *)seen.data + at) + 1) {
            dup = strlen((const char *)seen.data + at) == name.len && memcmp(seen.data + at, name.data, name.len) == 0;
        }
        if (dup) continue;
        fnhost_buf_append(&seen, name.data, name.len);
        fnhost_buf_append(&seen, "", 1);
        if (!first) fnhost_buf_str(out, ",");
        fnhost_json_string(out, (const char *)name.data, name.len);
        fnhost_buf_str(out, ":");
        fnhost_json_string(out, (const char *)value.data, value.len);
        first = 0;
    }
    fnhost_buf_str(out, "}");
    fnhost_buf_free(&name);
    fnhost_buf_free(&value);
    fnhost_buf_free(&seen);
}

static const char *http(const fnhost_context *ctx, const fnhost_request *req, fnhost_response *resp) {
    if (fnhost_str_eq(req->path, "/echo")) {
        fnhost_str type;
        if (!fnhost_header_get(req, "content-type", &type) || type.len == 0) type = fnhost_s("application/octet-stream");
        fnhost_response_header_str(resp, fnhost_s("content-type"), type);
        fnhost_buf_append(&resp->body, req->body.ptr, req->body.len);
        return NULL;
    }
    fnhost_response_header(resp, "content-type", "application/json");
    if (fnhost_str_eq(req->path, "/hello")) {
        fnhost_buf name = {0};
        if (!fnhost_query_get(req, "name", &name)) fnhost_buf_str(&name, "world");
        greeting(&resp->body, (const char *)name.data, name.len);
        fnhost_buf_free(&name);
        return NULL;
    }
    fnhost_buf *out = &resp->body;
    fnhost_buf_str(out, "{");
    field_str(out, "method", req->method.ptr, req->method.len, 1);
    field_str(out, "path", req->path.ptr, req->path.len, 0);
    fnhost_buf_str(out, ",\"query\":");
    query_object(out, req->query);
    fnhost_str agent;
    if (fnhost_header_get(req, "user-agent", &agent)) field_str(out, "user_agent", agent.ptr, agent.len, 0);
    else fnhost_buf_str(out, ",\"user_agent\":null");
    char length[32];
    snprintf(length, sizeof length, ",\"body_length\":%u", (unsigned)req->body.len);
    fnhost_buf_str(out, length);
    field_str(out, "function", ctx->function_name.ptr, ctx->function_name.len, 0);
    field_str(out, "version", ctx->version.ptr, ctx->version.len, 0);
    fnhost_buf_str(out, "}");
    return NULL;
}

static const char *event(const fnhost_context *ctx, const fnhost_event *ev, fnhost_event_result *result) {
    (void)ctx;
    if (ev->kind == FNHOST_QUEUE_BATCH) { greeting(&result->output, "QueueBatch", 10); return NULL; }
    if (ev->kind == FNHOST_SCHEDULE) { greeting(&result->output, "Schedule", 8); return NULL; }
    fnhost_buf name = {0};
    if (fnhost_json_get_string(ev->payload.ptr, ev->payload.len, "name", &name) == 1) {
        greeting(&result->output, (const char *)name.data, name.len);
    } else {
        fnhost_buf_append(&result->output, ev->payload.ptr, ev->payload.len);
    }
    fnhost_buf_free(&name);
    return NULL;
}

FNHOST_EXPORT_HTTP(http)
FNHOST_EXPORT_EVENT(event)
