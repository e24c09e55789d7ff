// TypeScript declarations of the fnhost guest SDK for JavaScript (sdk/js). For editors and `tsc
// --checkJs`; `fnhost build` runs the JavaScript itself. See sdk/wit/fnhost.wit for the contract.

export type Bytes = Uint8Array;
/** Header pairs (names lower-case, may repeat), or an object of name -> value. */
export type HeaderItems = Iterable<[string, string]> | Record<string, string>;

export class Headers implements Iterable<[string, string]> {
  constructor(items?: HeaderItems | null);
  /** The first value of `name` (case-insensitive), or `fallback`. */
  get(name: string): string | null;
  get<T>(name: string, fallback: T): string | T;
  getAll(name: string): string[];
  has(name: string): boolean;
  add(name: string, value: string): void;
  /** Replace every value of `name` with `value`. */
  set(name: string, value: string): void;
  items(): [string, string][];
  readonly length: number;
  [Symbol.iterator](): Iterator<[string, string]>;
}

/** An HTTP request routed to the function URL. */
export class Request {
  constructor(method: string, pathWithQuery: string, headers?: HeaderItems, body?: Bytes | string);
  readonly method: string;
  /** Path and query as received, relative to the function URL (`/items?id=3`). */
  readonly pathWithQuery: string;
  /** The path without the query ("/" if empty). */
  readonly path: string;
  /** The first value of each query parameter ('+' and %-escapes decoded). */
  readonly query: Record<string, string>;
  /** Every query parameter, in order. */
  readonly queryList: [string, string][];
  readonly headers: Headers;
  readonly body: Bytes;
  /** The body decoded as UTF-8. */
  text(): string;
  /** The body parsed as JSON (throws if it is not UTF-8 JSON). */
  json(): any;
}

/** An HTTP response. `new Response(bytes)` sends raw bytes; `Response.json` / `Response.text` encode. */
export class Response {
  /** Throws a RangeError unless 100 <= status <= 599. */
  constructor(body?: Bytes | ArrayBuffer | string, status?: number, headers?: HeaderItems);
  status: number;
  headers: Headers;
  body: Bytes;
  /** Compact, ASCII-only JSON with `content-type: application/json` (unless given). */
  static json(value: unknown, status?: number, headers?: HeaderItems): Response;
  /** UTF-8 text with `content-type: text/plain; charset=utf-8` (unless given). */
  static text(text: string, status?: number, headers?: HeaderItems): Response;
}

/** What the host knows about the running invocation. */
export class Context {
  readonly invocationId: string;
  readonly functionName: string;
  readonly functionVersion: string;
  /** Wall-clock deadline in milliseconds since the Unix epoch; past it the instance is stopped. */
  readonly deadlineUnixMs: number;
  readonly memoryLimitMb: number;
  /** Milliseconds left before the deadline (0 once it has passed). */
  remainingMs(): number;
}

/** A direct invoke: the caller's payload, as sent. */
export class Invoke {
  readonly kind: 'invoke';
  readonly payload: Bytes;
  text(): string;
  /** The payload parsed as JSON (throws if it is not UTF-8 JSON). */
  json(): any;
}

export class QueueMessage {
  readonly id: string;
  readonly queue: string;
  readonly body: Bytes;
  /** Deliveries of this message, this one included. */
  readonly receiveCount: number;
  text(): string;
  json(): any;
}

/** Messages delivered by a queue trigger. */
export class QueueBatch {
  readonly kind: 'queue-batch';
  readonly messages: QueueMessage[];
}

/** One tick of a schedule. */
export class Schedule {
  readonly kind: 'schedule';
  readonly schedule: string;
  /** The time the tick was due, in milliseconds since the Unix epoch. */
  readonly scheduledUnixMs: number;
}

/** An object change delivered by a blob trigger. */
export class BlobChange {
  readonly kind: 'blob';
  readonly bucket: string;
  readonly key: string;
  /** "put" or "delete". */
  readonly event: string;
  readonly size: number;
  readonly sha256: string;
  readonly receiveCount: number;
}

export type Event = Invoke | QueueBatch | Schedule | BlobChange;

/** What an event handler's output may be: bytes as is, a string as UTF-8, JSON for the rest, null as empty. */
export type Output = Bytes | ArrayBuffer | string | object | null | undefined;

/** The event handler's result; `failedMessageIds` are the queue messages to redeliver. */
export class EventResult {
  constructor(output?: Output, failedMessageIds?: string[]);
  output: Output;
  failedMessageIds: string[];
}

/** Handlers are synchronous: an async handler is refused at build time. */
export type HttpHandler = (request: Request, ctx: Context) => Response | object | string | Bytes;
export type EventHandler = (event: Event, ctx: Context) => EventResult | Output;

/** The `function` world's exports, with the bindings' own argument types. */
export interface World {
  handleHttp(ctx: unknown, request: unknown): unknown;
  handleEvent(ctx: unknown, event: unknown): unknown;
}

/** One function's handlers. In the guest's app.js:
 *
 *     const app = new App();
 *     app.http((req, ctx) => Response.json({ ok: true }));
 *     export const { handleHttp, handleEvent } = app.world();
 */
export class App {
  /** Register the HTTP handler. Throws a TypeError (failing the build) if it is not a synchronous
   * function of at most two parameters. */
  http<H extends HttpHandler>(fn: H): H;
  /** Register the event handler (same checks as `http`). */
  event<H extends EventHandler>(fn: H): H;
  world(): World;
}

/** A host call failed in an expected way. `code` is the WIT error case. */
export class HostError extends Error {
  static readonly code: string;
  readonly code: 'denied' | 'not-found' | 'too-large' | 'limit-exceeded' | 'unavailable' | 'invalid' | 'timeout' | 'error';
}
/** The manifest does not grant this bucket, queue or secret. */
export class Denied extends HostError {}
/** A missing key or an unset secret. */
export class NotFound extends HostError {}
/** A key, value, message or name is over its size limit. */
export class TooLarge extends HostError {}
/** The per-invocation host-call budget (count or bytes) is spent. */
export class LimitExceeded extends HostError {}
/** The backing store failed; the call may be retried. */
export class Unavailable extends HostError {}
/** Malformed argument (empty key, bad name...). */
export class InvalidArgument extends HostError {}
/** An outbound HTTP request got no complete response in time. */
export class Timeout extends HostError {}

/** JSON as every fnhost SDK writes it: compact and ASCII-only. */
export function jsonStringify(value: unknown): string;

/** Key-value buckets granted in the manifest (`[grants] kv = [...]`). Errors throw `HostError`s. */
export namespace kv {
  /** The value of `key`, or null if it is not set. */
  export function get(bucket: string, key: string): Bytes | null;
  /** The value of `key` decoded as UTF-8, or null if it is not set. */
  export function getText(bucket: string, key: string): string | null;
  /** Store `value` (a string as UTF-8). */
  export function set(bucket: string, key: string, value: Bytes | ArrayBuffer | string): void;
  /** Remove `key`; deleting a missing key succeeds. */
  export function del(bucket: string, key: string): void;
  export { del as delete };
  /** Keys starting with `prefix`, in byte order, at most `limit` (default 1000) of them. */
  export function listKeys(bucket: string, prefix?: string, limit?: number): string[];
  /** Add `delta` (default 1) atomically; the new value (a bigint beyond 2^53). A missing key counts as 0. */
  export function increment(bucket: string, key: string, delta?: number | bigint): number | bigint;
  /** Set `key` to `value` only if it holds `expected` now (null: only if absent); whether it did. */
  export function compareAndSwap(
    bucket: string, key: string, expected: Bytes | ArrayBuffer | string | null, value: Bytes | ArrayBuffer | string
  ): boolean;
  /** `set`, and the key disappears `ttlS` seconds later. */
  export function setWithTtl(bucket: string, key: string, value: Bytes | ArrayBuffer | string, ttlS: number): void;
  /** The values of up to 1,000 keys, in the order asked (null: not set). */
  export function getMany(bucket: string, keys: string[]): (Bytes | null)[];
  /** Set up to 1,000 keys in one transaction (all or none). */
  export function setMany(
    bucket: string,
    entries: Record<string, Bytes | ArrayBuffer | string> | Map<string, Bytes | ArrayBuffer | string> | [string, Bytes | ArrayBuffer | string][]
  ): void;
}

/** Blob objects in buckets granted in the manifest (`[grants] blobs = [...]`), streamed in chunks. */
export namespace blobs {
  export interface ObjectInfo {
    key: string; size: number; sha256: string; contentType: string; createdUnixMs: number; updatedUnixMs: number;
  }
  /** A write handle: `write` chunks, then `finish` (visible at once) or `abort`. */
  export class Writer {
    constructor(bucket: string, key: string, contentType?: string);
    write(data: Bytes | ArrayBuffer | string): void;
    finish(): ObjectInfo;
    abort(): void;
  }
  /** A read handle: `read` returns the next chunk, empty at the end. */
  export class Reader {
    constructor(bucket: string, key: string);
    read(max?: number): Bytes;
    chunks(size?: number): IterableIterator<Bytes>;
    close(): void;
  }
  export function put(bucket: string, key: string, data: Bytes | ArrayBuffer | string | Iterable<Bytes>, contentType?: string): ObjectInfo;
  export function get(bucket: string, key: string): Bytes | null;
  export function stat(bucket: string, key: string): ObjectInfo | null;
  export function list(bucket: string, prefix?: string, limit?: number): string[];
  export function del(bucket: string, key: string): void;
  export { del as delete };
}

/** Outbound HTTP to the origins granted in the manifest (`[grants] http = [...]`). An HTTP error
 * status is a response; a thrown `HostError` (Denied, Timeout, TooLarge...) means there is none. */
export namespace http {
  export interface Options {
    headers?: Record<string, string> | [string, string][];
    body?: Bytes | ArrayBuffer | string;
    json?: unknown;
    /** Bounds the whole exchange; never past the invocation's deadline. */
    timeoutMs?: number;
  }
  export class OutboundResponse {
    readonly status: number;
    readonly headers: Headers;
    readonly body: Bytes;
    readonly ok: boolean;
    text(): string;
    json(): unknown;
  }
  export function request(method: string, url: string, options?: Options): OutboundResponse;
  export function get(url: string, options?: Options): OutboundResponse;
  export function post(url: string, options?: Options): OutboundResponse;
  export function put(url: string, options?: Options): OutboundResponse;
  function del(url: string, options?: Options): OutboundResponse;
  export { del as delete };
}

/** Durable queues granted in the manifest (`[grants] queues = [...]`). */
export namespace queue {
  /** Append a message (a string as UTF-8); returns the message id. */
  export function publish(queue: string, body: Bytes | ArrayBuffer | string): string;
}

/** Secrets granted in the manifest (`[grants] secrets = [...]`). */
export namespace secrets {
  /** The secret's value; throws `NotFound` if it is granted but not set. */
  export function get(name: string): string;
}

/** Log lines, recorded with the invocation (console.log / console.error are captured too). */
export namespace log {
  export function debug(message: string): void;
  export function info(message: string): void;
  export function warn(message: string): void;
  export function error(message: string): void;
}
