// Large bodies outside list<u8> (WIT fnhost:function/body): the handler never sees the difference.
// Wasmtime copies a string into or out of the guest in one go but a list<u8> one value per byte, so
// the host leaves a request body or invoke payload over 32 KiB out of the record; this SDK takes it
// as base64 (`Uint8Array.fromBase64`, native code). Outputs stay in the record up to 2 MiB: turning
// bytes into text costs ~3,000 wasm instructions a byte here (`toBase64`, `String.fromCharCode`;
// `TextDecoder` knows only UTF-8), far more than the host's bulk lifting of a list<u8>. Above that
// Wasmtime's hostcall fuel would stop the list, so larger outputs go as latin-1 text: slow, but whole.
import * as raw from 'fnhost:function/body@0.2.0';
import { hostCall, NotFound } from './errors.js';

/** Outputs up to this many bytes stay in the record. */
export const LIST_MAX = 2 * 1024 * 1024;
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
  if (bytes.length <= LIST_MAX) return bytes;
  const parts = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK)));
  }
  hostCall(() => raw.setOutput(parts.join(''), 'latin1'));
  return new Uint8Array();
}
