// Blob objects in buckets granted in the manifest (`[grants] blobs = [...]`), moved in chunks
// through handles that live as long as the invocation (one left open is closed, and an unfinished
// write dropped, when it ends).
import * as raw from 'fnhost:function/blobs@0.2.0';
import { hostCall, NotFound } from './errors.js';
import { toBytes } from './bytes.js';

/** The most one host call moves. */
export const CHUNK = 1 << 20;

const info = (i) => ({
  key: i.key,
  size: Number(i.size),
  sha256: i.sha256,
  contentType: i.contentType,
  createdUnixMs: Number(i.createdUnixMs),
  updatedUnixMs: Number(i.updatedUnixMs),
});

/** A write handle: `write` chunks, then `finish` (visible at once) or `abort`. */
export class Writer {
  constructor(bucket, key, contentType = '') {
    this.handle = hostCall(() => raw.openWrite(bucket, key, contentType ?? ''));
  }

  write(data) {
    const bytes = toBytes(data);
    for (let at = 0; at < bytes.length; at += CHUNK) {
      hostCall(() => raw.write(this.handle, bytes.subarray(at, at + CHUNK)));
    }
  }

  finish() {
    return info(hostCall(() => raw.finish(this.handle)));
  }

  abort() {
    hostCall(() => raw.abort(this.handle));
  }
}

/** A read handle: `read(max)` returns the next chunk (a Uint8Array), empty at the end. */
export class Reader {
  constructor(bucket, key) {
    this.handle = hostCall(() => raw.openRead(bucket, key));
  }

  read(max = CHUNK) {
    return hostCall(() => raw.read(this.handle, Math.min(max, CHUNK)));
  }

  *chunks(size = CHUNK) {
    for (let chunk = this.read(size); chunk.length; chunk = this.read(size)) yield chunk;
  }

  close() {
    hostCall(() => raw.closeRead(this.handle));
  }
}

/** Store an object (bytes, a string as UTF-8, or an iterable of chunks); its metadata. */
export function put(bucket, key, data, contentType = '') {
  const w = new Writer(bucket, key, contentType);
  if (typeof data === 'string' || data instanceof Uint8Array || data instanceof ArrayBuffer) w.write(data);
  else for (const chunk of data) w.write(chunk);
  return w.finish();
}

/** The whole object (a Uint8Array), or null if there is none. */
export function get(bucket, key) {
  let r;
  try {
    r = new Reader(bucket, key);
  } catch (e) {
    if (e instanceof NotFound) return null;
    throw e;
  }
  const parts = [...r.chunks()];
  r.close();
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The object's metadata, or null if there is none. */
export function stat(bucket, key) {
  try {
    return info(hostCall(() => raw.stat(bucket, key)));
  } catch (e) {
    if (e instanceof NotFound) return null;
    throw e;
  }
}

/** Keys starting with `prefix`, in byte order (all of them, or the first `limit`). */
export function list(bucket, prefix = '', limit = Infinity) {
  const keys = [];
  let after = '';
  while (keys.length < limit) {
    const want = Math.min(1000, limit - keys.length);
    const page = hostCall(() => raw.listKeys(bucket, prefix, after, want));
    keys.push(...page);
    if (page.length < want) break;
    after = page[page.length - 1];
  }
  return keys;
}

/** Remove the object; deleting a missing key succeeds. */
export function del(bucket, key) {
  hostCall(() => raw.delete(bucket, key));
}

export { del as delete };
