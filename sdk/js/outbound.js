// Outbound HTTP to the origins granted in the manifest (`[grants] http = ["https://api.example.com"]`).
//
//     import { http } from 'fnhost';
//     const r = http.get('https://api.example.com/v1/items', { headers: { accept: 'application/json' } });
//     if (r.status === 200) use(r.json());
//
// An HTTP error status (404, 500...) is a response; a thrown HostError means there is none:
// Denied (origin not granted, or an address the host refuses), Timeout, TooLarge, LimitExceeded,
// InvalidArgument, Unavailable (DNS, connect, TLS...). `fetch` does not exist in a function.
import * as raw from 'fnhost:function/outbound-http@0.2.0';
import { hostCall } from './errors.js';
import { toBytes } from './bytes.js';
import { Headers } from './http.js';

/** The final response (after redirects). */
export class OutboundResponse {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = new Headers(headers);
    this.body = body;
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  text() {
    return new TextDecoder().decode(this.body);
  }

  json() {
    return JSON.parse(this.text());
  }
}

/** Send `method url`. Options: `headers` (object or [name, value] pairs), `body` (bytes or
 * string), `json` (a value sent as application/json), `timeoutMs` (bounds the whole exchange,
 * never past the invocation's deadline). */
export function request(method, url, { headers = {}, body = '', json, timeoutMs } = {}) {
  const pairs = (Array.isArray(headers) ? headers : Object.entries(headers)).map(([k, v]) => [String(k), String(v)]);
  let data = toBytes(body);
  if (json !== undefined) {
    data = toBytes(JSON.stringify(json));
    if (!pairs.some(([k]) => k.toLowerCase() === 'content-type')) pairs.push(['content-type', 'application/json']);
  }
  const r = hostCall(() => raw.request(method, url, pairs, data, timeoutMs ?? undefined));
  return new OutboundResponse(r.status, r.headers, r.body);
}

export const get = (url, options) => request('GET', url, options);
export const post = (url, options) => request('POST', url, options);
export const put = (url, options) => request('PUT', url, options);
export const del = (url, options) => request('DELETE', url, options);
export { del as delete };
