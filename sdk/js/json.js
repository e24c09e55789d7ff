// JSON as every fnhost SDK writes it: compact, and ASCII-only (non-ASCII as \uXXXX escapes, like
// Python's json.dumps), so a function's output does not depend on the language it is written in.

const NON_ASCII = /[\u007f-\uffff]/g;

export function stringify(value) {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`cannot encode ${typeof value} as JSON`);
  return text.replace(NON_ASCII, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
