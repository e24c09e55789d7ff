/* Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.
 * It answers byte for byte like guests/python/counter.
 *
 * HTTP:  POST /incr/<key> -> {"key":k,"value":n}       GET /get/<key> -> {"key":k,"value":n}
 *        DELETE /del/<key> -> {"key":k,"deleted":true}  GET /keys?prefix=p -> {"keys":[...]}
 *        GET /bucket/<bucket>/<key> reads any bucket: an ungranted one -> 403 {"error":"denied",...}
 * Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
 *        {"op": "claim", "key": k} -> {"key":k,"claimed":b} (compare-and-swap only if absent)
 *        {"op": "lease", "key": k} -> {"key":k,"leased":true} (set for 200 ms)
 *        {"op": "pair", "key": k, "prefix": p} -> {"values":["1","2",null]} (set-many k, p; get-many k, p, k-absent)
 * A host error is answered as {"error": kind, "message": ...} (HTTP status by kind), not as a failure. */
#include <stdio.h>
#include <stdlib.h>

#include "fnhost.h"

/* The value stored under key (0 if unset) into *value; FNHOST_OK or a host error code. */
static int current(fnhost_str bucket, fnhost_str key, long long *value) {
    fnhost_buf raw = {0};
    int rc = fnhost_kv_get(bucket, key, &raw);
    *value = 0;
    if (rc == FNHOST_OK) {
        fnhost_buf_append(&raw, "", 1);
        *value = strtoll((const char *)raw.data, NULL, 10);
    }
    fnhost_buf_free(&raw);
    return rc == FNHOST_ERR_NOT_FOUND ? FNHOST_OK : rc;
}

static void key_value(fnhost_buf *out, fnhost_str key, long long value) {
    char number[32];
    fnhost_buf_str(out, "{\"key\":");
    fnhost_json_string(out, key.ptr, key.len);
    snprintf(number, sizeof number, ",\"value\":%lld}", value);
    fnhost_buf_str(out, number);
}

/* blob-copy: key -> prefix through read and write handles; answers size, sha256, type, keys and
 * whether stat agrees with what finish returned. */
static int blob_copy(fnhost_str bucket, fnhost_str src, fnhost_str dst, fnhost_buf *out) {
    uint32_t in, wr, n;
    fnhost_str type = {"application/x-copy", 18};
    int rc = fnhost_blobs_open_read(bucket, src, &in);
    if (rc == FNHOST_OK) rc = fnhost_blobs_open_write(bucket, dst, type, &wr);
    if (rc != FNHOST_OK) return rc;
    fnhost_buf chunk = {0};
    do {
        chunk.len = 0;
        rc = fnhost_blobs_read(in, 65536, &chunk, &n);
        if (rc == FNHOST_OK && n) rc = fnhost_blobs_write(wr, chunk.data, chunk.len);
    } while (rc == FNHOST_OK && n);
    fnhost_buf_free(&chunk);
    if (rc == FNHOST_OK) rc = fnhost_blobs_close_read(in);
    fnhost_object_info info = {0}, stat = {0};
    if (rc == FNHOST_OK) rc = fnhost_blobs_finish(wr, &info);
    if (rc == FNHOST_OK) rc = fnhost_blobs_stat(bucket, dst, &stat);
    if (rc == FNHOST_OK) rc = fnhost_blobs_delete(bucket, src);
    fnhost_buf keys = {0};
    uint32_t count = 0;
    fnhost_str none = {"", 0};
    if (rc == FNHOST_OK) rc = fnhost_blobs_list(bucket, none, none, 1000, &keys, &count);
    if (rc == FNHOST_OK) {
        char number[32];
        snprintf(number, sizeof number, "{\"size\":%llu", (unsigned long long)info.size);
        fnhost_buf_str(out, number);
        fnhost_buf_str(out, ",\"sha256\":");
        fnhost_json_string(out, (const char *)info.sha256.data, info.sha256.len);
        fnhost_buf_str(out, ",\"content_type\":");
        fnhost_json_string(out, (const char *)info.content_type.data, info.content_type.len);
        fnhost_buf_str(out, ",\"keys\":[");
        const char *k = (const char *)keys.data;
        for (uint32_t i = 0; i < count; i++, k += strlen(k) + 1) {
            if (i) fnhost_buf_str(out, ",");
            fnhost_json_string(out, k, strlen(k));
        }
        int agrees = stat.size == info.size && stat.updated_unix_ms == info.updated_unix_ms &&
                     stat.sha256.len == info.sha256.len && !memcmp(stat.sha256.data, info.sha256.data, info.sha256.len);
        fnhost_buf_str(out, agrees ? "],\"stat_agrees\":true}" : "],\"stat_agrees\":false}");
    }
    fnhost_buf_free(&keys);
    fnhost_object_info_free(&info);
    fnhost_object_info_free(&stat);
    return rc;
}

/* Runs op, writing the result (or the host error) to *out. Returns FNHOST_OK, a host error code,
 * or -1 for an unknown op. */
static int run(const char *op, fnhost_str bucket, fnhost_str key, fnhost_str prefix, fnhost_buf *out) {
    long long value;
    int rc = -1;
    if (!strcmp(op, "incr")) { /* atomic: concurrent invocations never lose a count */
        int64_t next;
        if ((rc = fnhost_kv_increment(bucket, key, 1, &next)) == FNHOST_OK) key_value(out, key, (long long)next);
    } else if (!strcmp(op, "get")) {
        if ((rc = current(bucket, key, &value)) == FNHOST_OK) key_value(out, key, value);
    } else if (!strcmp(op, "delete")) {
        if ((rc = fnhost_kv_delete(bucket, key)) == FNHOST_OK) {
            fnhost_buf_str(out, "{\"key\":");
            fnhost_json_string(out, key.ptr, key.len);
            fnhost_buf_str(out, ",\"deleted\":true}");
        }
    } else if (!strcmp(op, "list")) {
        fnhost_buf keys = {0};
        uint32_t count;
        if ((rc = fnhost_kv_list_keys(bucket, prefix, 1000, &keys, &count)) == FNHOST_OK) {
            fnhost_buf_str(out, "{\"keys\":[");
            const char *k = (const char *)keys.data;
            for (uint32_t i = 0; i < count; i++, k += strlen(k) + 1) {
                if (i) fnhost_buf_str(out, ",");
                fnhost_json_string(out, k, strlen(k));
            }
            fnhost_buf_str(out, "]}");
        }
        fnhost_buf_free(&keys);
    } else if (!strcmp(op, "claim")) { /* compare-and-swap only if absent */
        int claimed;
        if ((rc = fnhost_kv_compare_and_swap(bucket, key, NULL, 0, "claimed", 7, &claimed)) == FNHOST_OK) {
            fnhost_buf_str(out, "{\"key\":");
            fnhost_json_string(out, key.ptr, key.len);
            fnhost_buf_str(out, claimed ? ",\"claimed\":true}" : ",\"claimed\":false}");
        }
    } else if (!strcmp(op, "lease")) { /* set for 200 ms */
        if ((rc = fnhost_kv_set_with_ttl(bucket, key, "leased", 6, 200)) == FNHOST_OK) {
            fnhost_buf_str(out, "{\"key\":");
            fnhost_json_string(out, key.ptr, key.len);
            fnhost_buf_str(out, ",\"leased\":true}");
        }
    } else if (!strcmp(op, "blob-copy")) { /* streams object key to prefix in 64 KiB reads, then deletes key */
        rc = blob_copy(bucket, key, prefix, out);
    } else if (!strcmp(op, "pair")) { /* set-many key, prefix; get-many key, prefix, key-absent */
        fnhost_buf absent = {0};
        fnhost_buf_append(&absent, key.ptr, key.len);
        fnhost_buf_str(&absent, "-absent");
        fnhost_str keys[3] = {key, prefix, {(const char *)absent.data, (uint32_t)absent.len}};
        fnhost_bytes values[2] = {{(const uint8_t *)"1", 1}, {(const uint8_t *)"2", 1}};
        fnhost_buf found = {0};
        int64_t lengths[3];
        if ((rc = fnhost_kv_set_many(bucket, keys, values, 2)) == FNHOST_OK &&
            (rc = fnhost_kv_get_many(bucket, keys, 3, &found, lengths)) == FNHOST_OK) {
            fnhost_buf_str(out, "{\"values\":[");
            size_t at = 0;
            for (int i = 0; i < 3; i++) {
                if (i) fnhost_buf_str(out, ",");
                if (lengths[i] < 0) {
                    fnhost_buf_str(out, "null");
                } else {
                    fnhost_json_string(out, (const char *)found.data + at, (size_t)lengths[i]);
                    at += (size_t)lengths[i];
                }
            }
            fnhost_buf_str(out, "]}");
        }
        fnhost_buf_free(&found);
        fnhost_buf_free(&absent);
    }
    if (rc > 0) {
        out->len = 0;
        fnhost_buf_str(out, "{\"error\":\"");
        fnhost_buf_str(out, fnhost_error_kind(rc));
        fnhost_buf_str(out, "\",\"message\":");
        fnhost_json_string(out, fnhost_error_message(), strlen(fnhost_error_message()));
        fnhost_buf_str(out, "}");
    }
    return rc;
}

static const int STATUS[] = {200, 403, 404, 413, 429, 503, 400};

static const char *http(const fnhost_context *ctx, const fnhost_request *req, fnhost_response *resp) {
    (void)ctx;
    fnhost_str parts[4];
    uint32_t count = 0, start = 0, end = req->path.len;
    while (start < end && req->path.ptr[start] == '/') start++;
    while (end > start && req->path.ptr[end - 1] == '/') end--;
    for (uint32_t i = start; count < 4; i++) {
        if (i == end || req->path.ptr[i] == '/') {
            parts[count].ptr = req->path.ptr + start;
            parts[count++].len = i - start;
            start = i + 1;
            if (i == end) break;
        }
    }
    static const struct { const char *method, *route; uint32_t parts; } ROUTES[] = {
        {"POST", "incr", 2}, {"GET", "get", 2}, {"DELETE", "del", 2}, {"GET", "keys", 1}, {"GET", "bucket", 3}};
    int route = -1;
    for (int i = 0; i < 5 && route < 0; i++) {
        if (fnhost_str_eq(req->method, ROUTES[i].method) && fnhost_str_eq(parts[0], ROUTES[i].route)) route = i;
    }
    fnhost_response_header(resp, "content-type", "application/json");
    if (route < 0 || count != ROUTES[route].parts) {
        fnhost_buf message = {0};
        fnhost_buf_str(&message, "no route ");
        fnhost_buf_append(&message, req->method.ptr, req->method.len);
        fnhost_buf_str(&message, " ");
        fnhost_buf_append(&message, req->path.ptr, req->path.len);
        fnhost_buf_str(&resp->body, "{\"error\":\"not-found\",\"message\":");
        fnhost_json_string(&resp->body, (const char *)message.data, message.len);
        fnhost_buf_str(&resp->body, "}");
        fnhost_buf_free(&message);
        resp->status = 404;
        return NULL;
    }
    fnhost_str bucket = fnhost_s("counters"), none = {"", 0};
    fnhost_buf prefix = {0};
    int rc;
    switch (route) {
    case 0: rc = run("incr", bucket, parts[1], none, &resp->body); break;
    case 1: rc = run("get", bucket, parts[1], none, &resp->body); break;
    case 2: rc = run("delete", bucket, parts[1], none, &resp->body); break;
    case 3:
        fnhost_query_get(req, "prefix", &prefix);
        rc = run("list", bucket, none, (fnhost_str){(const char *)prefix.data, (uint32_t)prefix.len}, &resp->body);
        break;
    default: rc = run("get", parts[1], parts[2], none, &resp->body); break;
    }
    fnhost_buf_free(&prefix);
    if (rc > 0) resp->status = STATUS[rc <= 6 ? rc : 5];
    return NULL;
}

static fnhost_str as_str(const fnhost_buf *b) { return (fnhost_str){(const char *)b->data, (uint32_t)b->len}; }

static const char *event(const fnhost_context *ctx, const fnhost_event *ev, fnhost_event_result *result) {
    (void)ctx;
    if (ev->kind != FNHOST_INVOKE) return "counter handles direct invokes only";
    fnhost_buf op = {0}, bucket = {0}, key = {0}, prefix = {0};
    const uint8_t *p = ev->payload.ptr;
    size_t n = ev->payload.len;
    if (fnhost_json_get_string(p, n, "op", &op) != 1) return "payload has no \"op\" string";
    if (fnhost_json_get_string(p, n, "bucket", &bucket) != 1) fnhost_buf_str(&bucket, "counters");
    fnhost_json_get_string(p, n, "key", &key);
    fnhost_json_get_string(p, n, "prefix", &prefix);
    fnhost_buf_append(&op, "", 1);
    int rc = run((const char *)op.data, as_str(&bucket), as_str(&key), as_str(&prefix), &result->output);
    fnhost_buf_free(&op);
    fnhost_buf_free(&bucket);
    fnhost_buf_free(&key);
    fnhost_buf_free(&prefix);
    return rc < 0 ? "unknown op (incr, get, delete, list, claim, lease, pair)" : NULL;
}

FNHOST_EXPORT_HTTP(http)
FNHOST_EXPORT_EVENT(event)
