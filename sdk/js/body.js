// Large bodies outside list<u8> (WIT fnhost:function/body): the handler never sees the difference.
// Wasmtime copies a string into or out of the guest in one go but a list<u8> one value per byte, so
// the host leaves a request body or invoke payload over 32 KiB out of the record, and this SDK
// returns an output over 32 KiB outside it too, as the text SpiderMonkey converts in native code:
// base64 in (`Uint8Array.fromBase64`), latin-1 out (`String.fromCharCode` over chunks of bytes;
// its `toBase64` costs thousands of instructions a byte here).
import * as raw from 'fnhost:function/body@0.2.0';
import { hostCall, NotFound } from './errors.js';

/** Outputs up to this many bytes stay in the record (the host's threshold for inputs is the same). */
export const INLINE_MAX = 32 * 1024;
const CHUNK = 8192; // arguments per String.fromCharCode call

/** The input: the record's, or (when the record's is empty) the one the host left outside it. */
export function takeInput(inline) {
  if (inline.length) return inline;
  let text;
  try {
    text = hostCall(() => raw.takeInput('base64'));
  } catch (e) {
    if (e instanceof NotFound) return inline; // the record held it: the input is empty
    throw e;
  }
  return Uint8Array.fromBase64(text);
}

/** What goes in the record: `bytes`, or nothing once large `bytes` are handed to the host. */
export function putOutput(bytes) {
  if (bytes.length <= INLINE_MAX) return bytes;
  const parts = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK)));
  }
  hostCall(() => raw.setOutput(parts.join(''), 'latin1'));
  return new Uint8Array();
}
