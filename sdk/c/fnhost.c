/* fnhost guest SDK for C: see fnhost.h. The wire format is docs/abi.md. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include "fnhost.h"

#include <stdlib.h>
#include <time.h>

/* ---- host imports (module "fnhost") ---- */
/* The core ABI of contract version 0.2.0 (docs/abi.md): every import is in module "fnhost@0.2.0". */
#define FNHOST_IMPORT(name) __attribute__((import_module("fnhost@0.2.0"), import_name(#name)))
FNHOST_IMPORT(kv_get) int64_t fnhost_sys_kv_get(const char *, uint32_t, const char *, uint32_t);
FNHOST_IMPORT(kv_set) int64_t fnhost_sys_kv_set(const char *, uint32_t, const char *, uint32_t, const void *, uint32_t);
FNHOST_IMPORT(kv_delete) int64_t fnhost_sys_kv_delete(const char *, uint32_t, const char *, uint32_t);
FNHOST_IMPORT(kv_list_keys) int64_t fnhost_sys_kv_list_keys(const char *, uint32_t, const char *, uint32_t, uint32_t);
FNHOST_IMPORT(kv_increment) int64_t fnhost_sys_kv_increment(const char *, uint32_t, const char *, uint32_t, int64_t);
FNHOST_IMPORT(kv_compare_and_swap) int64_t fnhost_sys_kv_compare_and_swap(const char *, uint32_t, const char *, uint32_t, int32_t, const void *, uint32_t, const void *, uint32_t);
FNHOST_IMPORT(kv_set_with_ttl) int64_t fnhost_sys_kv_set_with_ttl(const char *, uint32_t, const char *, uint32_t, const void *, uint32_t, uint64_t);
FNHOST_IMPORT(kv_get_many) int64_t fnhost_sys_kv_get_many(const char *, uint32_t, const void *, uint32_t);
FNHOST_IMPORT(kv_set_many) int64_t fnhost_sys_kv_set_many(const char *, uint32_t, const void *, uint32_t);
FNHOST_IMPORT(queue_publish) int64_t fnhost_sys_queue_publish(const char *, uint32_t, const void *, uint32_t);
FNHOST_IMPORT(secrets_get) int64_t fnhost_sys_secrets_get(const char *, uint32_t);
FNHOST_IMPORT(log_write) void fnhost_sys_log_write(int32_t, const char *, uint32_t);
FNHOST_IMPORT(outbound_http_request) int64_t fnhost_sys_outbound_http_request(const char *, uint32_t, const char *, uint32_t, const void *, uint32_t, const void *, uint32_t, int32_t, uint32_t);
FNHOST_IMPORT(result_len) int32_t fnhost_sys_result_len(void);
FNHOST_IMPORT(result_read) int32_t fnhost_sys_result_read(void *);

/* ---- buffers ---- */
void fnhost_buf_append(fnhost_buf *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) __builtin_trap(); /* out of memory: nothing sensible is left to do */
        b->data = grown;
        b->cap = cap;
    }
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
}

void fnhost_buf_str(fnhost_buf *b, const char *s) { fnhost_buf_append(b, s, strlen(s)); }

void fnhost_buf_free(fnhost_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void put_u16(fnhost_buf *b, uint16_t v) { uint8_t x[2] = {v & 0xff, v >> 8}; fnhost_buf_append(b, x, 2); }
static void put_u32(fnhost_buf *b, uint32_t v) {
    uint8_t x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    fnhost_buf_append(b, x, 4);
}
static void put_blob(fnhost_buf *b, const void *data, size_t len) {
    put_u32(b, (uint32_t)len);
    fnhost_buf_append(b, data, len);
}

/* ---- input decoding ---- */
typedef struct { const uint8_t *p; uint32_t len, pos; int bad; } reader;

static const uint8_t *take(reader *r, uint32_t n) {
    if (r->bad || n > r->len - r->pos) { r->bad = 1; return NULL; }
    const uint8_t *out = r->p + r->pos;
    r->pos += n;
    return out;
}
static uint8_t get_u8(reader *r) { const uint8_t *x = take(r, 1); return x ? x[0] : 0; }
static uint32_t get_u32(reader *r) {
    const uint8_t *x = take(r, 4);
    return x ? (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24 : 0;
}
static uint64_t get_u64(reader *r) { uint64_t lo = get_u32(r); return lo | (uint64_t)get_u32(r) << 32; }
static fnhost_bytes get_bytes(reader *r) {
    fnhost_bytes b = {NULL, get_u32(r)};
    b.ptr = take(r, b.len);
    if (!b.ptr) b.len = 0;
    return b;
}
static fnhost_str get_str(reader *r) { fnhost_bytes b = get_bytes(r); fnhost_str s = {(const char *)b.ptr, b.len}; return s; }
/* A list count, bounded by the bytes left (each item takes at least 4 bytes). */
static uint32_t get_count(reader *r) {
    uint32_t n = get_u32(r);
    if (n > (r->len - r->pos) / 4) { r->bad = 1; return 0; }
    return n;
}
static void get_context(reader *r, fnhost_context *ctx) {
    ctx->invocation_id = get_str(r);
    ctx->function_name = get_str(r);
    ctx->version = get_str(r);
    ctx->deadline_unix_ms = get_u64(r);
    ctx->memory_limit_mb = get_u32(r);
}

/* ---- exports ---- */
__attribute__((export_name("fnhost_alloc"))) int32_t fnhost_alloc(int32_t size) {
    if (size < 0) return 0;
    return (int32_t)(uintptr_t)malloc(size ? (size_t)size : 1);
}

static fnhost_buf output; /* the last output: alive until the next call replaces it */

static int64_t publish(void) { return (int64_t)((uint64_t)(uintptr_t)output.data << 32 | (uint32_t)output.len); }

static int64_t finish(const char *error) {
    if (error) {
        output.len = 0;
        uint8_t tag = 1;
        fnhost_buf_append(&output, &tag, 1);
        fnhost_buf_str(&output, error);
    }
    return publish();
}

static const char *MALFORMED = "fnhost SDK: malformed input from the host";

int64_t fnhost_run_http_(int32_t ptr, int32_t len, fnhost_http_handler handler) {
    reader r = {(const uint8_t *)(uintptr_t)ptr, (uint32_t)len, 0, len < 0};
    fnhost_context ctx;
    fnhost_request req;
    memset(&req, 0, sizeof req);
    get_context(&r, &ctx);
    req.method = get_str(&r);
    req.path_with_query = get_str(&r);
    req.header_count = get_count(&r);
    fnhost_header *headers = calloc(req.header_count ? req.header_count : 1, sizeof *headers);
    for (uint32_t i = 0; i < req.header_count; i++) {
        headers[i].name = get_str(&r);
        headers[i].value = get_str(&r);
    }
    req.headers = headers;
    req.body = get_bytes(&r);
    /* As Python's urlsplit: the fragment is dropped and an empty path is "/". */
    uint32_t end = 0, q = 0;
    while (end < req.path_with_query.len && req.path_with_query.ptr[end] != '#') end++;
    while (q < end && req.path_with_query.ptr[q] != '?') q++;
    req.path.ptr = req.path_with_query.ptr;
    req.path.len = q;
    if (q == 0) req.path = fnhost_s("/");
    if (q < end) { req.query.ptr = req.path_with_query.ptr + q + 1; req.query.len = end - q - 1; }

    output.len = 0;
    const char *error = (r.bad || r.pos != r.len) ? MALFORMED : NULL;
    fnhost_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    if (!error) error = handler(&ctx, &req, &resp);
    if (!error && (resp.status < 200 || resp.status > 599)) error = "HTTP status must be 200..599";
    if (!error) {
        uint8_t tag = 0;
        fnhost_buf_append(&output, &tag, 1);
        put_u16(&output, resp.status);
        put_u32(&output, resp.header_count_);
        fnhost_buf_append(&output, resp.headers_.data, resp.headers_.len);
        put_blob(&output, resp.body.data, resp.body.len);
    }
    fnhost_buf_free(&resp.body);
    fnhost_buf_free(&resp.headers_);
    free(headers);
    free((void *)(uintptr_t)ptr);
    return finish(error);
}

int64_t fnhost_run_event_(int32_t ptr, int32_t len, fnhost_event_handler handler) {
    reader r = {(const uint8_t *)(uintptr_t)ptr, (uint32_t)len, 0, len < 0};
    fnhost_context ctx;
    fnhost_event ev;
    memset(&ev, 0, sizeof ev);
    fnhost_message *messages = NULL;
    get_context(&r, &ctx);
    ev.kind = (fnhost_event_kind)get_u8(&r);
    if (ev.kind == FNHOST_INVOKE) {
        ev.payload = get_bytes(&r);
    } else if (ev.kind == FNHOST_QUEUE_BATCH) {
        ev.message_count = get_count(&r);
        messages = calloc(ev.message_count ? ev.message_count : 1, sizeof *messages);
        for (uint32_t i = 0; i < ev.message_count; i++) {
            messages[i].id = get_str(&r);
            messages[i].queue = get_str(&r);
            messages[i].body = get_bytes(&r);
            messages[i].receive_count = get_u32(&r);
        }
        ev.messages = messages;
    } else if (ev.kind == FNHOST_SCHEDULE) {
        ev.schedule = get_str(&r);
        ev.scheduled_unix_ms = get_u64(&r);
    } else {
        r.bad = 1;
    }

    output.len = 0;
    const char *error = (r.bad || r.pos != r.len) ? MALFORMED : NULL;
    fnhost_event_result result;
    memset(&result, 0, sizeof result);
    if (!error) error = handler(&ctx, &ev, &result);
    if (!error) {
        uint8_t tag = 0;
        fnhost_buf_append(&output, &tag, 1);
        put_blob(&output, result.output.data, result.output.len);
        put_u32(&output, result.failed_count_);
        fnhost_buf_append(&output, result.failed_.data, result.failed_.len);
    }
    fnhost_buf_free(&result.output);
    fnhost_buf_free(&result.failed_);
    free(messages);
    free((void *)(uintptr_t)ptr);
    return finish(error);
}

/* ---- request and response helpers ---- */
uint64_t fnhost_remaining_ms(const fnhost_context *ctx) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    return now >= ctx->deadline_unix_ms ? 0 : ctx->deadline_unix_ms - now;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int fnhost_header_get(const fnhost_request *req, const char *name, fnhost_str *value) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->header_count; i++) {
        fnhost_str h = req->headers[i].name;
        if (h.len != n) continue;
        size_t j = 0;
        while (j < n && lower(h.ptr[j]) == lower(name[j])) j++;
        if (j == n) { *value = req->headers[i].value; return 1; }
    }
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void percent_decode(fnhost_buf *out, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') c = ' ';
        else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        fnhost_buf_append(out, &c, 1);
    }
}

int fnhost_query_next(fnhost_str *rest, fnhost_buf *name, fnhost_buf *value) {
    while (rest->len) {
        uint32_t n = 0, eq;
        while (n < rest->len && rest->ptr[n] != '&') n++;
        const char *part = rest->ptr;
        rest->ptr += n < rest->len ? n + 1 : n;
        rest->len -= n < rest->len ? n + 1 : n;
        if (n == 0) continue;
        for (eq = 0; eq < n && part[eq] != '='; eq++) {}
        name->len = value->len = 0;
        percent_decode(name, part, eq);
        if (eq < n) percent_decode(value, part + eq + 1, n - eq - 1);
        return 1;
    }
    return 0;
}

int fnhost_query_get(const fnhost_request *req, const char *name, fnhost_buf *value) {
    fnhost_str rest = req->query;
    fnhost_buf k = {0}, v = {0};
    int found = 0;
    while (!found && fnhost_query_next(&rest, &k, &v)) {
        found = k.len == strlen(name) && memcmp(k.data, name, k.len) == 0;
    }
    if (found) fnhost_buf_append(value, v.data, v.len);
    fnhost_buf_free(&k);
    fnhost_buf_free(&v);
    return found;
}

void fnhost_response_header_str(fnhost_response *resp, fnhost_str name, fnhost_str value) {
    put_u32(&resp->headers_, name.len);
    for (uint32_t i = 0; i < name.len; i++) {
        char c = (char)lower(name.ptr[i]);
        fnhost_buf_append(&resp->headers_, &c, 1);
    }
    put_blob(&resp->headers_, value.ptr, value.len);
    resp->header_count_++;
}

void fnhost_response_header(fnhost_response *resp, const char *name, const char *value) {
    fnhost_response_header_str(resp, fnhost_s(name), fnhost_s(value));
}

void fnhost_event_result_fail(fnhost_event_result *result, fnhost_str message_id) {
    put_blob(&result->failed_, message_id.ptr, message_id.len);
    result->failed_count_++;
}

/* ---- host calls ---- */
static const char *KINDS[] = {"ok", "denied", "not-found", "too-large", "limit-exceeded", "unavailable", "invalid", "timeout"};
static fnhost_buf last_error;

const char *fnhost_error_kind(int code) { return code >= 0 && code <= 7 ? KINDS[code] : "unavailable"; }

const char *fnhost_error_message(void) { return last_error.len ? (const char *)last_error.data : ""; }

/* Appends the pending result (success value or error message) to *out. */
static void take_pending(fnhost_buf *out) {
    int32_t n = fnhost_sys_result_len();
    if (n <= 0) {
        uint8_t none;
        fnhost_sys_result_read(&none);
        return;
    }
    uint8_t *tmp = malloc((size_t)n);
    if (!tmp) __builtin_trap();
    int32_t written = fnhost_sys_result_read(tmp);
    fnhost_buf_append(out, tmp, (size_t)(written < 0 ? 0 : written > n ? n : written));
    free(tmp);
}

static int check(int64_t rc) {
    if (rc >= 0) return FNHOST_OK;
    int code = rc < -7 ? FNHOST_ERR_UNAVAILABLE : (int)-rc;
    last_error.len = 0;
    take_pending(&last_error);
    if (last_error.len == 0) fnhost_buf_str(&last_error, fnhost_error_kind(code));
    fnhost_buf_append(&last_error, "", 1); /* NUL */
    last_error.len--;
    return code;
}

int fnhost_kv_get(fnhost_str bucket, fnhost_str key, fnhost_buf *value) {
    int rc = check(fnhost_sys_kv_get(bucket.ptr, bucket.len, key.ptr, key.len));
    if (rc == FNHOST_OK) take_pending(value);
    return rc;
}

int fnhost_kv_set(fnhost_str bucket, fnhost_str key, const void *value, size_t len) {
    return check(fnhost_sys_kv_set(bucket.ptr, bucket.len, key.ptr, key.len, value, (uint32_t)len));
}

int fnhost_kv_delete(fnhost_str bucket, fnhost_str key) {
    return check(fnhost_sys_kv_delete(bucket.ptr, bucket.len, key.ptr, key.len));
}

int fnhost_kv_list_keys(fnhost_str bucket, fnhost_str prefix, uint32_t limit, fnhost_buf *keys, uint32_t *count) {
    int rc = check(fnhost_sys_kv_list_keys(bucket.ptr, bucket.len, prefix.ptr, prefix.len, limit));
    *count = 0;
    if (rc != FNHOST_OK) return rc;
    fnhost_buf encoded = {0};
    take_pending(&encoded);
    reader r = {encoded.data, (uint32_t)encoded.len, 0, 0};
    uint32_t n = get_count(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        fnhost_str k = get_str(&r);
        fnhost_buf_append(keys, k.ptr, k.len);
        fnhost_buf_append(keys, "", 1);
    }
    if (!r.bad) *count = n;
    fnhost_buf_free(&encoded);
    return r.bad ? FNHOST_ERR_INVALID : FNHOST_OK;
}

int fnhost_kv_increment(fnhost_str bucket, fnhost_str key, int64_t delta, int64_t *value) {
    int rc = check(fnhost_sys_kv_increment(bucket.ptr, bucket.len, key.ptr, key.len, delta));
    if (rc != FNHOST_OK) return rc;
    fnhost_buf raw = {0};
    take_pending(&raw);
    rc = raw.len == 8 ? FNHOST_OK : FNHOST_ERR_INVALID;
    if (rc == FNHOST_OK) memcpy(value, raw.data, 8); /* little-endian, as wasm32 is */
    fnhost_buf_free(&raw);
    return rc;
}

int fnhost_kv_compare_and_swap(fnhost_str bucket, fnhost_str key, const void *expected, size_t expected_len,
                               const void *value, size_t len, int *swapped) {
    int64_t rc = fnhost_sys_kv_compare_and_swap(bucket.ptr, bucket.len, key.ptr, key.len, expected != NULL, expected,
                                                (uint32_t)expected_len, value, (uint32_t)len);
    *swapped = rc == 1;
    return check(rc);
}

int fnhost_kv_set_with_ttl(fnhost_str bucket, fnhost_str key, const void *value, size_t len, uint64_t ttl_ms) {
    return check(fnhost_sys_kv_set_with_ttl(bucket.ptr, bucket.len, key.ptr, key.len, value, (uint32_t)len, ttl_ms));
}

int fnhost_kv_get_many(fnhost_str bucket, const fnhost_str *keys, uint32_t count, fnhost_buf *values, int64_t *lengths) {
    fnhost_buf list = {0};
    put_u32(&list, count);
    for (uint32_t i = 0; i < count; i++) put_blob(&list, keys[i].ptr, keys[i].len);
    int rc = check(fnhost_sys_kv_get_many(bucket.ptr, bucket.len, list.data, (uint32_t)list.len));
    fnhost_buf_free(&list);
    if (rc != FNHOST_OK) return rc;
    fnhost_buf encoded = {0};
    take_pending(&encoded);
    reader r = {encoded.data, (uint32_t)encoded.len, 0, 0};
    if (get_u32(&r) != count) r.bad = 1; /* one option per key asked, each at least its tag byte */
    for (uint32_t i = 0; i < count && !r.bad; i++) {
        lengths[i] = -1;
        if (get_u8(&r) == 1) {
            fnhost_bytes v = get_bytes(&r);
            fnhost_buf_append(values, v.ptr, v.len);
            lengths[i] = v.len;
        }
    }
    if (r.pos != r.len) r.bad = 1;
    fnhost_buf_free(&encoded);
    return r.bad ? FNHOST_ERR_INVALID : FNHOST_OK;
}

int fnhost_kv_set_many(fnhost_str bucket, const fnhost_str *keys, const fnhost_bytes *values, uint32_t count) {
    fnhost_buf list = {0};
    put_u32(&list, count);
    for (uint32_t i = 0; i < count; i++) {
        put_blob(&list, keys[i].ptr, keys[i].len);
        put_blob(&list, values[i].ptr, values[i].len);
    }
    int rc = check(fnhost_sys_kv_set_many(bucket.ptr, bucket.len, list.data, (uint32_t)list.len));
    fnhost_buf_free(&list);
    return rc;
}

int fnhost_queue_publish(fnhost_str queue, const void *body, size_t len, fnhost_buf *id) {
    int rc = check(fnhost_sys_queue_publish(queue.ptr, queue.len, body, (uint32_t)len));
    if (rc == FNHOST_OK) take_pending(id);
    return rc;
}

int fnhost_secrets_get(fnhost_str name, fnhost_buf *value) {
    int rc = check(fnhost_sys_secrets_get(name.ptr, name.len));
    if (rc == FNHOST_OK) take_pending(value);
    return rc;
}

int fnhost_http_request(fnhost_str method, fnhost_str url, const fnhost_header *headers, uint32_t header_count,
                        const void *body, size_t len, uint32_t timeout_ms, fnhost_http_response *resp) {
    memset(resp, 0, sizeof *resp);
    fnhost_buf list = {0};
    put_u32(&list, header_count);
    for (uint32_t i = 0; i < header_count; i++) {
        put_blob(&list, headers[i].name.ptr, headers[i].name.len);
        put_blob(&list, headers[i].value.ptr, headers[i].value.len);
    }
    int rc = check(fnhost_sys_outbound_http_request(method.ptr, method.len, url.ptr, url.len, list.data,
                                                    (uint32_t)list.len, body, (uint32_t)len, timeout_ms != 0,
                                                    timeout_ms));
    fnhost_buf_free(&list);
    if (rc != FNHOST_OK) return rc;
    take_pending(&resp->raw_);
    reader r = {resp->raw_.data, (uint32_t)resp->raw_.len, 0, 0};
    const uint8_t *status = take(&r, 2);
    resp->status = status ? (uint16_t)(status[0] | status[1] << 8) : 0;
    uint32_t n = get_count(&r);
    resp->headers_ = n ? malloc(n * sizeof *resp->headers_) : NULL;
    if (n && !resp->headers_) __builtin_trap();
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        resp->headers_[i].name = get_str(&r);
        resp->headers_[i].value = get_str(&r);
    }
    resp->headers = resp->headers_;
    resp->header_count = r.bad ? 0 : n;
    resp->body = get_bytes(&r);
    if (r.bad || r.pos != r.len) {
        fnhost_http_response_free(resp);
        return FNHOST_ERR_INVALID;
    }
    return FNHOST_OK;
}

void fnhost_http_response_free(fnhost_http_response *resp) {
    free(resp->headers_);
    fnhost_buf_free(&resp->raw_);
    memset(resp, 0, sizeof *resp);
}

void fnhost_log(int level, const char *message) { fnhost_sys_log_write(level, message, (uint32_t)strlen(message)); }

/* ---- JSON ---- */

/* Decodes one UTF-8 sequence at s[*i] (advancing *i); U+FFFD for an invalid byte. Strict as
 * Python's decoder: no overlong forms, no surrogates, nothing above U+10FFFF. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *i, int *bad) {
    uint8_t c = s[*i];
    uint32_t cp, min;
    int extra;
    if (c < 0x80) { (*i)++; return c; }
    if ((c & 0xe0) == 0xc0) { cp = c & 0x1f; extra = 1; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { cp = c & 0x0f; extra = 2; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { cp = c & 0x07; extra = 3; min = 0x10000; }
    else goto invalid;
    if (n - *i <= (size_t)extra) goto invalid;
    for (int k = 1; k <= extra; k++) {
        if ((s[*i + k] & 0xc0) != 0x80) goto invalid;
        cp = cp << 6 | (s[*i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) goto invalid;
    *i += extra + 1;
    return cp;
invalid:
    (*i)++;
    *bad = 1;
    return 0xfffd;
}

static void put_utf8(fnhost_buf *b, uint32_t cp) {
    uint8_t x[4];
    size_t n;
    if (cp < 0x80) { x[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { x[0] = 0xc0 | cp >> 6; x[1] = 0x80 | (cp & 0x3f); n = 2; }
    else if (cp < 0x10000) { x[0] = 0xe0 | cp >> 12; x[1] = 0x80 | (cp >> 6 & 0x3f); x[2] = 0x80 | (cp & 0x3f); n = 3; }
    else { x[0] = 0xf0 | cp >> 18; x[1] = 0x80 | (cp >> 12 & 0x3f); x[2] = 0x80 | (cp >> 6 & 0x3f); x[3] = 0x80 | (cp & 0x3f); n = 4; }
    fnhost_buf_append(b, x, n);
}

void fnhost_json_string(fnhost_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    fnhost_buf_append(b, "\"", 1);
    size_t i = 0;
    int bad = 0;
    while (i < len) {
        uint32_t cp = utf8_next((const uint8_t *)s, len, &i, &bad);
        const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n" : cp == '\r' ? "\\r"
                        : cp == '\t' ? "\\t" : cp == '\b' ? "\\b" : cp == '\f' ? "\\f" : NULL;
        if (esc) { fnhost_buf_str(b, esc); continue; }
        if (cp >= ' ' && cp <= '~') { char c = (char)cp; fnhost_buf_append(b, &c, 1); continue; }
        uint32_t units[2] = {cp, 0};
        int count = 1;
        if (cp > 0xffff) { cp -= 0x10000; units[0] = 0xd800 + (cp >> 10); units[1] = 0xdc00 + (cp & 0x3ff); count = 2; }
        for (int k = 0; k < count; k++) {
            char u[6] = {'\\', 'u', hex[units[k] >> 12 & 15], hex[units[k] >> 8 & 15], hex[units[k] >> 4 & 15], hex[units[k] & 15]};
            fnhost_buf_append(b, u, 6);
        }
    }
    fnhost_buf_append(b, "\"", 1);
}

typedef struct { const uint8_t *s; size_t n, i; int depth; } json_parser;

static void json_ws(json_parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int json_lit(json_parser *p, const char *lit) {
    size_t k = strlen(lit);
    if (p->n - p->i < k || memcmp(p->s + p->i, lit, k) != 0) return 0;
    p->i += k;
    return 1;
}

static int json_hex4(json_parser *p, uint32_t *out) {
    if (p->n - p->i < 4) return 0;
    *out = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p->s[p->i++]);
        if (h < 0) return 0;
        *out = *out << 4 | (uint32_t)h;
    }
    return 1;
}

/* Parses a string at p->i (on the opening quote), decoding into *out if out is not NULL. */
static int json_str(json_parser *p, fnhost_buf *out) {
    p->i++;
    while (p->i < p->n) {
        uint8_t c = p->s[p->i];
        if (c == '"') { p->i++; return 1; }
        if (c < 0x20) return 0;
        if (c != '\\') { if (out) fnhost_buf_append(out, &c, 1); p->i++; continue; }
        if (++p->i >= p->n) return 0;
        c = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = c ? strchr(from, c) : NULL;
        if (at) { if (out) fnhost_buf_append(out, to + (at - from), 1); continue; }
        if (c != 'u') return 0;
        uint32_t cp, low;
        if (!json_hex4(p, &cp)) return 0;
        if (cp >= 0xd800 && cp < 0xdc00 && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
            size_t save = p->i;
            p->i += 2;
            if (json_hex4(p, &low) && low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            else p->i = save;
        }
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd; /* a lone surrogate */
        if (out) put_utf8(out, cp);
    }
    return 0;
}

static int json_digits(json_parser *p) {
    size_t from = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    return (int)(p->i - from);
}

static int json_value(json_parser *p);

static int json_container(json_parser *p, char close) {
    if (++p->depth > 512) return 0;
    p->i++;
    json_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return 1; }
    for (;;) {
        json_ws(p);
        if (close == '}') {
            if (p->i >= p->n || p->s[p->i] != '"' || !json_str(p, NULL)) return 0;
            json_ws(p);
            if (!json_lit(p, ":")) return 0;
            json_ws(p);
        }
        if (!json_value(p)) return 0;
        json_ws(p);
        if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return 1; }
        if (!json_lit(p, ",")) return 0;
    }
}

static int json_value(json_parser *p) {
    if (p->i >= p->n) return 0;
    switch (p->s[p->i]) {
    case '{': return json_container(p, '}');
    case '[': return json_container(p, ']');
    case '"': return json_str(p, NULL);
    case 't': return json_lit(p, "true");
    case 'f': return json_lit(p, "false");
    case 'n': return json_lit(p, "null");
    case 'N': return json_lit(p, "NaN");
    case 'I': return json_lit(p, "Infinity");
    default: break;
    }
    if (json_lit(p, "-Infinity")) return 1;
    json_lit(p, "-");
    size_t int_start = p->i;
    int n = json_digits(p);
    if (n == 0 || (n > 1 && p->s[int_start] == '0')) return 0;
    if (json_lit(p, ".") && json_digits(p) == 0) return 0;
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (json_digits(p) == 0) return 0;
    }
    return 1;
}

int fnhost_json_get_string(const uint8_t *data, size_t len, const char *key, fnhost_buf *value) {
    int bad = 0;
    for (size_t i = 0; i < len && !bad;) utf8_next(data, len, &i, &bad);
    if (bad) return -1;
    json_parser p = {data, len, 0, 0};
    json_ws(&p);
    int found = 0;
    if (p.i < p.n && p.s[p.i] == '{') {
        /* The top-level object, walked member by member to find `key`. */
        fnhost_buf k = {0}, v = {0};
        int ok = 0;
        p.i++;
        json_ws(&p);
        if (json_lit(&p, "}")) ok = 1;
        while (!ok) {
            json_ws(&p);
            k.len = 0;
            if (p.i >= p.n || p.s[p.i] != '"' || !json_str(&p, &k)) break;
            json_ws(&p);
            if (!json_lit(&p, ":")) break;
            json_ws(&p);
            int match = k.len == strlen(key) && memcmp(k.data, key, k.len) == 0;
            if (match && p.i < p.n && p.s[p.i] == '"') {
                v.len = 0;
                if (!json_str(&p, &v)) break;
                found = 1;
            } else {
                if (!json_value(&p)) break;
                if (match) found = 0; /* a later non-string value replaces an earlier string */
            }
            json_ws(&p);
            if (json_lit(&p, "}")) ok = 1;
            else if (!json_lit(&p, ",")) break;
        }
        if (ok && found) fnhost_buf_append(value, v.data, v.len);
        fnhost_buf_free(&k);
        fnhost_buf_free(&v);
        if (!ok) return -1;
    } else if (!json_value(&p)) {
        return -1;
    }
    json_ws(&p);
    if (p.i != p.n) return -1;
    return found;
}
