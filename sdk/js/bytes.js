// Bytes in and out: the WIT's list<u8> is a Uint8Array.

/** `value` as bytes: a Uint8Array as is, a string as UTF-8, an ArrayBuffer or typed array viewed as bytes. */
export function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected bytes (Uint8Array) or a string, not ${describe(value)}`);
}

export function isBytes(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** UTF-8 bytes as a string; invalid UTF-8 throws a TypeError (as Python's bytes.decode raises). */
export function decodeUtf8(bytes) {
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

export function describe(value) {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ?? 'object';
}
