/* Fetch: makes the outbound HTTP request its event asks for (fnhost_http_request); it answers
 * like guests/python/fetch.
 *
 * Event: {"url": u, "method": "GET", "body": text, "token": t (sent as header x-token)}
 *        -> {"status":s,"headers":[[name,value]...],"body":text}
 * A host error is answered as {"error": kind, "message": ...}, not as a failure. */
#include <stdio.h>

#include "fnhost.h"

static fnhost_str as_str(const fnhost_buf *b) { return (fnhost_str){(const char *)b->data, (uint32_t)b->len}; }

static const char *event(const fnhost_context *ctx, const fnhost_event *ev, fnhost_event_result *result) {
    (void)ctx;
    if (ev->kind != FNHOST_INVOKE) return "fetch handles direct invokes only";
    fnhost_buf url = {0}, method = {0}, body = {0}, token = {0};
    const uint8_t *p = ev->payload.ptr;
    size_t n = ev->payload.len;
    if (fnhost_json_get_string(p, n, "url", &url) != 1) return "payload has no \"url\" string";
    if (fnhost_json_get_string(p, n, "method", &method) != 1) fnhost_buf_str(&method, "GET");
    fnhost_json_get_string(p, n, "body", &body);
    fnhost_header header = {fnhost_s("x-token"), {0, 0}};
    uint32_t header_count = fnhost_json_get_string(p, n, "token", &token) == 1;
    header.value = as_str(&token);
    fnhost_http_response resp;
    int rc = fnhost_http_request(as_str(&method), as_str(&url), &header, header_count, body.data, body.len, 0, &resp);
    fnhost_buf *out = &result->output;
    if (rc != FNHOST_OK) {
        const char *message = fnhost_error_message();
        fnhost_buf_str(out, "{\"error\":");
        fnhost_json_string(out, fnhost_error_kind(rc), strlen(fnhost_error_kind(rc)));
        fnhost_buf_str(out, ",\"message\":");
        fnhost_json_string(out, message, strlen(message));
        fnhost_buf_str(out, "}");
    } else {
        char status[32];
        snprintf(status, sizeof status, "{\"status\":%u,\"headers\":[", (unsigned)resp.status);
        fnhost_buf_str(out, status);
        for (uint32_t i = 0; i < resp.header_count; i++) {
            fnhost_buf_str(out, i ? ",[" : "[");
            fnhost_json_string(out, resp.headers[i].name.ptr, resp.headers[i].name.len);
            fnhost_buf_str(out, ",");
            fnhost_json_string(out, resp.headers[i].value.ptr, resp.headers[i].value.len);
            fnhost_buf_str(out, "]");
        }
        fnhost_buf_str(out, "],\"body\":");
        fnhost_json_string(out, (const char *)resp.body.ptr, resp.body.len);
        fnhost_buf_str(out, "}");
        fnhost_http_response_free(&resp);
    }
    fnhost_buf_free(&url);
    fnhost_buf_free(&method);
    fnhost_buf_free(&body);
    fnhost_buf_free(&token);
    return NULL;
}

FNHOST_EXPORT_EVENT(event)
