// Secrets set by an operator and granted in the manifest (`[grants] secrets = [...]`).
import * as raw from 'fnhost:function/secrets@0.2.0';
import { hostCall, NotFound } from './errors.js';

/** The secret's value. Throws `NotFound` if it is granted but not set. */
export function get(name) {
  try {
    return hostCall(() => raw.get(name));
  } catch (e) {
    if (!(e instanceof NotFound)) throw e;
    // the WIT's not-found has no text: say which secret, and the fix
    throw new NotFound(`secret '${name}' is granted but not set; set it with \`fnhost secrets set ${name}\``);
  }
}
