/* {{name}}: GET /hello?name=... greets and counts visits in the kv bucket `visits`; any event
 * returns the count. Build with `fnhost build .`, test with `python -m pytest test_function.py`. */
#include <stdio.h>
#include <stdlib.h>

#include "fnhost.h"

static const fnhost_str BUCKET = {"visits", 6}, KEY = {"hello", 5};

/* The visits counted so far into *count; FNHOST_OK or a host error code. */
static int visits(long long *count) {
    fnhost_buf raw = {0};
    int rc = fnhost_kv_get(BUCKET, KEY, &raw);
    *count = 0;
    if (rc == FNHOST_OK) {
        fnhost_buf_append(&raw, "", 1);
        *count = strtoll((const char *)raw.data, NULL, 10);
    }
    fnhost_buf_free(&raw);
    return rc == FNHOST_ERR_NOT_FOUND ? FNHOST_OK : rc;
}

static const char *http(const fnhost_context *ctx, const fnhost_request *req, fnhost_response *resp) {
    (void)ctx;
    fnhost_response_header(resp, "content-type", "application/json");
    if (!fnhost_str_eq(req->path, "/hello")) {
        resp->status = 404;
        fnhost_buf_str(&resp->body, "{\"error\":\"not-found\",\"message\":\"no route\"}");
        return NULL;
    }
    long long count;
    if (visits(&count) != FNHOST_OK) return fnhost_error_message();
    char number[32];
    int n = snprintf(number, sizeof number, "%lld", count + 1);
    if (fnhost_kv_set(BUCKET, KEY, number, (size_t)n) != FNHOST_OK) return fnhost_error_message();
    fnhost_log(FNHOST_INFO, "visit");

    fnhost_buf name = {0}, text = {0};
    if (!fnhost_query_get(req, "name", &name)) fnhost_buf_str(&name, "world");
    fnhost_buf_str(&text, "Hello, ");
    fnhost_buf_append(&text, name.data, name.len);
    fnhost_buf_str(&text, "!");
    fnhost_buf_str(&resp->body, "{\"message\":");
    fnhost_json_string(&resp->body, (const char *)text.data, text.len);
    fnhost_buf_str(&resp->body, ",\"visits\":");
    fnhost_buf_str(&resp->body, number);
    fnhost_buf_str(&resp->body, "}");
    fnhost_buf_free(&name);
    fnhost_buf_free(&text);
    return NULL;
}

static const char *event(const fnhost_context *ctx, const fnhost_event *ev, fnhost_event_result *result) {
    (void)ctx;
    (void)ev;
    long long count;
    if (visits(&count) != FNHOST_OK) return fnhost_error_message();
    char out[48];
    snprintf(out, sizeof out, "{\"visits\":%lld}", count);
    fnhost_buf_str(&result->output, out);
    return NULL;
}

FNHOST_EXPORT_HTTP(http)
FNHOST_EXPORT_EVENT(event)
