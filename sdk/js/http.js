// `Request` and `Response`: the HTTP handler's input and output.
import { decodeUtf8, describe, isBytes, toBytes } from './bytes.js';
import { stringify } from './json.js';

/** HTTP headers: an ordered list of [name, value] with case-insensitive lookup. Names may repeat. */
export class Headers {
  constructor(items) {
    const pairs = items == null ? [] : Array.isArray(items) ? items : Object.entries(items);
    this._items = pairs.map(([k, v]) => [String(k).toLowerCase(), String(v)]);
  }

  /** The first value of `name`, or `fallback` (default null). */
  get(name, fallback = null) {
    name = name.toLowerCase();
    const found = this._items.find(([k]) => k === name);
    return found ? found[1] : fallback;
  }

  getAll(name) {
    name = name.toLowerCase();
    return this._items.filter(([k]) => k === name).map(([, v]) => v);
  }

  has(name) {
    return this.get(name) !== null;
  }

  add(name, value) {
    this._items.push([name.toLowerCase(), String(value)]);
  }

  /** Replace every value of `name` with `value`. */
  set(name, value) {
    name = name.toLowerCase();
    this._items = this._items.filter(([k]) => k !== name);
    this._items.push([name, String(value)]);
  }

  items() {
    return this._items.map(([k, v]) => [k, v]);
  }

  get length() {
    return this._items.length;
  }

  [Symbol.iterator]() {
    return this.items()[Symbol.iterator]();
  }
}

/** An HTTP request routed to the function URL. `path` excludes the query; `query` keeps the first
 * value of each parameter (all of them are in `queryList`). */
export class Request {
  constructor(method, pathWithQuery, headers = [], body = new Uint8Array()) {
    this.method = method;
    this.pathWithQuery = pathWithQuery;
    const noFragment = pathWithQuery.split('#', 1)[0];
    const q = noFragment.indexOf('?');
    this.path = (q < 0 ? noFragment : noFragment.slice(0, q)) || '/';
    this.queryList = q < 0 ? [] : parseQuery(noFragment.slice(q + 1));
    this.query = {};
    for (const [k, v] of this.queryList) {
      if (!Object.hasOwn(this.query, k)) this.query[k] = v;
    }
    this.headers = new Headers(headers);
    this.body = toBytes(body);
  }

  /** The body decoded as UTF-8. */
  text() {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON (throws a SyntaxError or TypeError if it is not). */
  json() {
    return JSON.parse(decodeUtf8(this.body)); // JSON is UTF-8 (RFC 8259)
  }
}

/** An HTTP response. `new Response(bytes)` sends raw bytes; `Response.json` / `Response.text` encode. */
export class Response {
  constructor(body = new Uint8Array(), status = 200, headers = undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new RangeError(`HTTP status must be 100..599, got ${status}`);
    }
    this.status = status;
    this.headers = new Headers(headers);
    this.body = toBytes(body);
  }

  static json(value, status = 200, headers = undefined) {
    const r = new Response(stringify(value), status, headers);
    if (!r.headers.has('content-type')) r.headers.add('content-type', 'application/json');
    return r;
  }

  static text(text, status = 200, headers = undefined) {
    const r = new Response(String(text), status, headers);
    if (!r.headers.has('content-type')) r.headers.add('content-type', 'text/plain; charset=utf-8');
    return r;
  }
}

/** What an HTTP handler returned, as a `Response`: object/array → JSON, string → text, bytes → raw. */
export function toResponse(value) {
  if (value instanceof Response) return value;
  if (typeof value === 'string') return Response.text(value);
  if (isBytes(value)) return new Response(value);
  if (value !== null && typeof value === 'object' && typeof value.then !== 'function') return Response.json(value);
  throw new TypeError(
    `an HTTP handler must return a Response, object, array, string or Uint8Array, not ${describe(value)}`,
  );
}

// application/x-www-form-urlencoded, as Python's parse_qsl(keep_blank_values=True): '+' is a space.
function parseQuery(query) {
  const pairs = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    pairs.push([unquote(k), unquote(v)]);
  }
  return pairs;
}

function unquote(text) {
  text = text.replaceAll('+', ' ');
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // malformed %-escapes are kept as they are
  }
}
