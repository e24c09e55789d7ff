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
