/* fnhost guest SDK for C (and Zig, through @cImport): the core-module ABI of docs/abi.md.
 *
 * Build a guest with
 *   python -m ziglang cc -target wasm32-wasi -Os -s -mexec-model=reactor -I sdk/c \
 *       -o function.wasm guest.c sdk/c/fnhost.c
 * (`python -m fnhost build DIR` does this). A guest writes handlers and exports them:
 *
 *   static const char *http(const fnhost_context *ctx, const fnhost_request *req, fnhost_response *resp) {
 *       fnhost_response_header(resp, "content-type", "text/plain");
 *       fnhost_buf_str(&resp->body, "hello");
 *       return NULL;                       // NULL: success; a message: the function's failure
 *   }
 *   FNHOST_EXPORT_HTTP(http)
 *
 * Strings in inputs (fnhost_str) point into the input and are not NUL-terminated; they live until
 * the handler returns.
 */
#ifndef FNHOST_H
#define FNHOST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { const char *ptr; uint32_t len; } fnhost_str;
typedef struct { const uint8_t *ptr; uint32_t len; } fnhost_bytes;
typedef struct { fnhost_str name, value; } fnhost_header; /* names are lower-case */

/* A NUL-terminated C string as an fnhost_str. */
static inline fnhost_str fnhost_s(const char *s) { fnhost_str r = {s, (uint32_t)strlen(s)}; return r; }
/* 1 if a equals the C string b. */
static inline int fnhost_str_eq(fnhost_str a, const char *b) {
    return strlen(b) == a.len && memcmp(a.ptr, b, a.len) == 0;
}

/* A growable byte buffer owned by the SDK user; free it with fnhost_buf_free. */
typedef struct { uint8_t *data; size_t len, cap; } fnhost_buf;
void fnhost_buf_append(fnhost_buf *b, const void *data, size_t len);
void fnhost_buf_str(fnhost_buf *b, const char *s); /* appends a NUL-terminated string */
void fnhost_buf_free(fnhost_buf *b);

/* What the host knows about this invocation. */
typedef struct {
    fnhost_str invocation_id, function_name, version;
    uint64_t deadline_unix_ms; /* past it, the instance is stopped */
    uint32_t memory_limit_mb;
} fnhost_context;
/* Milliseconds left before the deadline (0 once it has passed). */
uint64_t fnhost_remaining_ms(const fnhost_context *ctx);

typedef struct {
    fnhost_str method;
    fnhost_str path_with_query; /* as received */
    fnhost_str path;            /* without query or fragment; "/" when empty */
    fnhost_str query;           /* the raw query string, without '?' */
    const fnhost_header *headers;
    uint32_t header_count;
    fnhost_bytes body;
} fnhost_request;

/* The first value of header `name` (case-insensitive); 1 if found. */
int fnhost_header_get(const fnhost_request *req, const char *name, fnhost_str *value);
/* Iterates query parameters in order, `+` and `%XX` decoded (as Python's parse_qsl with
 * keep_blank_values). Start with *rest = req->query; returns 0 when done. name and value are
 * reset and filled on each call. */
int fnhost_query_next(fnhost_str *rest, fnhost_buf *name, fnhost_buf *value);
/* The first value of query parameter `name`, decoded into *value; 1 if found. */
int fnhost_query_get(const fnhost_request *req, const char *name, fnhost_buf *value);

typedef struct {
    uint16_t status;         /* 200 unless set */
    fnhost_buf body;
    fnhost_buf headers_;     /* private: encoded headers */
    uint32_t header_count_;  /* private */
} fnhost_response;
void fnhost_response_header(fnhost_response *resp, const char *name, const char *value);
void fnhost_response_header_str(fnhost_response *resp, fnhost_str name, fnhost_str value);

typedef enum { FNHOST_INVOKE = 0, FNHOST_QUEUE_BATCH = 1, FNHOST_SCHEDULE = 2 } fnhost_event_kind;
typedef struct {
    fnhost_str id, queue;
    fnhost_bytes body;
    uint32_t receive_count; /* deliveries of this message, this one included */
} fnhost_message;
typedef struct {
    fnhost_event_kind kind;
    fnhost_bytes payload;            /* FNHOST_INVOKE */
    const fnhost_message *messages;  /* FNHOST_QUEUE_BATCH */
    uint32_t message_count;
    fnhost_str schedule;             /* FNHOST_SCHEDULE */
    uint64_t scheduled_unix_ms;
} fnhost_event;

typedef struct {
    fnhost_buf output;
    fnhost_buf failed_;      /* private: encoded failed message ids */
    uint32_t failed_count_;  /* private */
} fnhost_event_result;
/* Marks a queue message as failed: it will be redelivered. */
void fnhost_event_result_fail(fnhost_event_result *result, fnhost_str message_id);

/* Handlers return NULL on success, or a message: the function's failure (outcome GuestError). */
typedef const char *(*fnhost_http_handler)(const fnhost_context *, const fnhost_request *, fnhost_response *);
typedef const char *(*fnhost_event_handler)(const fnhost_context *, const fnhost_event *, fnhost_event_result *);

int64_t fnhost_run_http_(int32_t ptr, int32_t len, fnhost_http_handler handler);
int64_t fnhost_run_event_(int32_t ptr, int32_t len, fnhost_event_handler handler);

#define FNHOST_EXPORT_HTTP(handler)                                                   \
    __attribute__((export_name("fnhost_handle_http"))) int64_t fnhost_handle_http(  \
        int32_t ptr, int32_t len) { return fnhost_run_http_(ptr, len, handler); }
#define FNHOST_EXPORT_EVENT(handler)                                                  \
    __attribute__((export_name("fnhost_handle_event"))) int64_t fnhost_handle_event( \
        int32_t ptr, int32_t len) { return fnhost_run_event_(ptr, len, handler); }

/* Host calls. Each returns FNHOST_OK or an error code; fnhost_error_message() then says what
 * happened (valid until the next host call). */
enum {
    FNHOST_OK = 0,
    FNHOST_ERR_DENIED = 1,         /* not granted by the manifest */
    FNHOST_ERR_NOT_FOUND = 2,      /* missing key, unset granted secret */
    FNHOST_ERR_TOO_LARGE = 3,      /* key, value, message or name over its limit */
    FNHOST_ERR_LIMIT_EXCEEDED = 4, /* this invocation's host-call budget is spent */
    FNHOST_ERR_UNAVAILABLE = 5,    /* the store failed; retrying may work */
    FNHOST_ERR_INVALID = 6,        /* malformed argument */
    FNHOST_ERR_TIMEOUT = 7         /* an outbound HTTP request got no complete response in time */
};
/* "denied", "not-found", "too-large", "limit-exceeded", "unavailable", "invalid", "timeout". */
const char *fnhost_error_kind(int code);
/* The message of the last failed host call; the kind when the host gave none (NUL-terminated). */
const char *fnhost_error_message(void);

/* The value is appended to *value. */
int fnhost_kv_get(fnhost_str bucket, fnhost_str key, fnhost_buf *value);
int fnhost_kv_set(fnhost_str bucket, fnhost_str key, const void *value, size_t len);
int fnhost_kv_delete(fnhost_str bucket, fnhost_str key);
/* Keys starting with prefix, in byte order, at most limit: appended to *keys, each followed by a
 * NUL byte; *count is set to their number. */
int fnhost_kv_list_keys(fnhost_str bucket, fnhost_str prefix, uint32_t limit, fnhost_buf *keys, uint32_t *count);
/* Adds delta to the integer under key (a missing key counts as 0), atomically; the new value goes
 * to *value. Stored as decimal text. */
int fnhost_kv_increment(fnhost_str bucket, fnhost_str key, int64_t delta, int64_t *value);
/* Sets key to value only if its value is expected now (expected NULL: only if the key is absent);
 * *swapped says whether it did. Atomic. */
int fnhost_kv_compare_and_swap(fnhost_str bucket, fnhost_str key, const void *expected, size_t expected_len,
                               const void *value, size_t len, int *swapped);
/* kv_set, and the key is gone ttl_ms milliseconds later. */
int fnhost_kv_set_with_ttl(fnhost_str bucket, fnhost_str key, const void *value, size_t len, uint64_t ttl_ms);
/* The values of up to 1,000 keys: each value found is appended to *values, in order, and
 * lengths[i] is its length, or -1 where keys[i] is not set. */
int fnhost_kv_get_many(fnhost_str bucket, const fnhost_str *keys, uint32_t count, fnhost_buf *values, int64_t *lengths);
/* Stores up to 1,000 entries (keys[i] -> values[i]) in one transaction: all of them or none. */
int fnhost_kv_set_many(fnhost_str bucket, const fnhost_str *keys, const fnhost_bytes *values, uint32_t count);
/* The new message's id is appended to *id. */
int fnhost_queue_publish(fnhost_str queue, const void *body, size_t len, fnhost_buf *id);
/* The secret's value is appended to *value. */
int fnhost_secrets_get(fnhost_str name, fnhost_buf *value);

/* Outbound HTTP to the origins granted in the manifest ([grants] http = ["https://api.example.com"]).
 * An HTTP error status (404, 500...) is a response; an error code means there is none:
 * FNHOST_ERR_DENIED (origin not granted, or an address the host refuses), FNHOST_ERR_TIMEOUT,
 * FNHOST_ERR_TOO_LARGE, FNHOST_ERR_LIMIT_EXCEEDED, FNHOST_ERR_INVALID, FNHOST_ERR_UNAVAILABLE. */
typedef struct {
    uint16_t status;
    const fnhost_header *headers; /* lower-case names, in the order received */
    uint32_t header_count;
    fnhost_bytes body;
    fnhost_buf raw_;              /* private: what headers and body point into */
    fnhost_header *headers_;      /* private */
} fnhost_http_response;
/* Sends method url; timeout_ms bounds the whole exchange (0: the host's default), never past the
 * invocation's deadline. On FNHOST_OK, *resp holds the response: free it with fnhost_http_response_free. */
int fnhost_http_request(fnhost_str method, fnhost_str url, const fnhost_header *headers, uint32_t header_count,
                        const void *body, size_t len, uint32_t timeout_ms, fnhost_http_response *resp);
void fnhost_http_response_free(fnhost_http_response *resp);

enum { FNHOST_DEBUG = 0, FNHOST_INFO = 1, FNHOST_WARN = 2, FNHOST_ERROR = 3 };
void fnhost_log(int level, const char *message);

/* JSON, written exactly as Python's json.dumps(obj, separators=(",", ":")) does. */
void fnhost_json_string(fnhost_buf *b, const char *s, size_t len); /* a quoted, escaped string */
/* Reads string field `key` of a top-level JSON object (the last one if the key repeats) into
 * *value (appended, unescaped). Returns 1 if found, 0 if data is valid JSON without such a string
 * field, -1 if data is not valid UTF-8 JSON. */
int fnhost_json_get_string(const uint8_t *data, size_t len, const char *key, fnhost_buf *value);

#ifdef __cplusplus
}
#endif
#endif /* FNHOST_H */
