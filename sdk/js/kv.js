// Key-value buckets granted in the manifest (`[grants] kv = [...]`).
import * as raw from 'fnhost:function/kv@0.2.0';
import { hostCall, NotFound } from './errors.js';
import { toBytes } from './bytes.js';

/** The value of `key` (bytes), or null if it is not set. */
export function get(bucket, key) {
  try {
    return hostCall(() => raw.get(bucket, key));
  } catch (e) {
    if (e instanceof NotFound) return null; // the WIT reports a missing key as error.not-found
    throw e;
  }
}

/** The value of `key` decoded as UTF-8, or null if it is not set. */
export function getText(bucket, key) {
  const value = get(bucket, key);
  return value === null ? null : new TextDecoder().decode(value);
}

/** Store `value` (a string as UTF-8) under `key`. */
export function set(bucket, key, value) {
  hostCall(() => raw.set(bucket, key, toBytes(value)));
}

/** Remove `key`; deleting a missing key succeeds. */
export function del(bucket, key) {
  hostCall(() => raw.delete(bucket, key));
}

export { del as delete };

/** Keys starting with `prefix`, in byte order, at most `limit` of them. */
export function listKeys(bucket, prefix = '', limit = 1000) {
  return hostCall(() => raw.listKeys(bucket, prefix, limit));
}

// Since fnhost:function@0.2.0 -----------------------------------------------------------------

const asNumber = (n) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);

/** Add `delta` (default 1) to the integer under `key` atomically and return the new value (a Number,
 * or a BigInt beyond 2^53); a missing key counts as 0. Concurrent increments are never lost. */
export function increment(bucket, key, delta = 1) {
  return asNumber(hostCall(() => raw.increment(bucket, key, BigInt(delta))));
}

/** Set `key` to `value` only if it holds `expected` now (`null`: only if absent); returns whether it did. */
export function compareAndSwap(bucket, key, expected, value) {
  const want = expected === null || expected === undefined ? undefined : toBytes(expected);
  return hostCall(() => raw.compareAndSwap(bucket, key, want, toBytes(value)));
}

/** `set`, and `key` disappears `ttlS` seconds later (invisible at once, deleted in the background). */
export function setWithTtl(bucket, key, value, ttlS) {
  if (!(ttlS > 0)) throw new RangeError(`ttlS must be a positive number of seconds, got ${ttlS}`);
  hostCall(() => raw.setWithTtl(bucket, key, toBytes(value), BigInt(Math.ceil(ttlS * 1000))));
}

/** The values of up to 1,000 keys, in the order asked (null: not set). */
export function getMany(bucket, keys) {
  return hostCall(() => raw.getMany(bucket, keys)).map((v) => (v === undefined ? null : v));
}

/** Set up to 1,000 keys in one transaction (all or none): an object, a Map or [key, value] pairs. */
export function setMany(bucket, entries) {
  const pairs = entries instanceof Map || Array.isArray(entries) ? [...entries] : Object.entries(entries);
  hostCall(() => raw.setMany(bucket, pairs.map(([k, v]) => [k, toBytes(v)])));
}
