/* Chaos: a test guest that misbehaves on command, to exercise the host's limits and sandbox.
 * The commands and outputs are those of guests/python/chaos; the invoke payload is one of:
 *
 *   ok           return "ok"
 *   loop         spin forever (fuel or the deadline stops it)
 *   spin:N       burn CPU for N loop iterations, then return {"spun":N}
 *   sleep:MS     sleep MS milliseconds of wall-clock time (the deadline stops it, not fuel)
 *   alloc:MB     allocate and touch MB MiB (4 KiB blocks); over the memory cap it traps
 *   recurse      unbounded recursion: the wasm call stack overflows
 *   stdout:N     write N bytes to stdout
 *   trap         abort(): a wasm `unreachable` trap
 *   exit:N       exit with status N
 *   raise        return an error: the function's failure (outcome GuestError)
 *   env          the environment as JSON: only the manifest's [env] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fnhost.h"

extern char **environ;
static volatile long long sink;

#pragma clang diagnostic ignored "-Winfinite-recursion" /* on purpose: `recurse` overflows the stack */
static long long recurse(long long depth) {
    volatile long long frame[64];
    frame[depth % 64] = depth;
    return recurse(depth + 1) + frame[0];
}

static void number_field(fnhost_buf *out, const char *key, long long value) {
    char text[64];
    snprintf(text, sizeof text, "{\"%s\":%lld}", key, value);
    fnhost_buf_str(out, text);
}

static const char *event(const fnhost_context *ctx, const fnhost_event *ev, fnhost_event_result *result) {
    (void)ctx;
    if (ev->kind != FNHOST_INVOKE) {
        fnhost_buf_str(&result->output, ev->kind == FNHOST_QUEUE_BATCH ? "{\"ignored\":\"QueueBatch\"}"
                                                                          : "{\"ignored\":\"Schedule\"}");
        return NULL;
    }
    char command[64] = {0};
    size_t n = ev->payload.len < sizeof command - 1 ? ev->payload.len : sizeof command - 1;
    memcpy(command, ev->payload.ptr, n);
    while (n && (command[n - 1] == '\n' || command[n - 1] == ' ')) command[--n] = 0;
    char *arg = strchr(command, ':');
    if (arg) *arg++ = 0;
    long long number = arg ? atoll(arg) : 0;
    fnhost_buf *out = &result->output;

    if (!strcmp(command, "ok")) fnhost_buf_str(out, "ok");
    else if (!strcmp(command, "loop")) for (long long i = 0;; i++) sink = i;
    else if (!strcmp(command, "spin")) {
        long long total = 0;
        for (long long i = 0; i < number; i++) sink = total += i;
        number_field(out, "spun", number);
    } else if (!strcmp(command, "sleep")) {
        struct timespec ts = {number / 1000, (number % 1000) * 1000000};
        nanosleep(&ts, NULL);
        number_field(out, "slept_ms", number);
    } else if (!strcmp(command, "alloc")) {
        /* Page-sized blocks, as a growing workload would: when the cap refuses a grow the memory
         * is at the cap, and the host reports MemoryLimit. */
        for (long long i = 0; i < number * 256; i++) {
            volatile char *block = malloc(4096);
            if (!block) abort();
            block[0] = 1;
        }
        number_field(out, "allocated_mb", number);
    } else if (!strcmp(command, "recurse")) number_field(out, "depth", recurse(0));
    else if (!strcmp(command, "stdout")) {
        for (long long i = 0; i < number; i++) putchar('x');
        fflush(stdout);
        number_field(out, "printed", number);
    } else if (!strcmp(command, "trap")) abort();
    else if (!strcmp(command, "exit")) exit(arg ? (int)number : 1);
    else if (!strcmp(command, "raise")) return "chaos: raised on purpose";
    else if (!strcmp(command, "env")) {
        fnhost_buf_str(out, "{");
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
            if (e != environ) fnhost_buf_str(out, ",");
            fnhost_json_string(out, *e, klen);
            fnhost_buf_str(out, ":");
            fnhost_json_string(out, eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0);
        }
        fnhost_buf_str(out, "}");
    } else return "unknown chaos command (see guests/c/chaos/chaos.c)";
    return NULL;
}

FNHOST_EXPORT_EVENT(event)
