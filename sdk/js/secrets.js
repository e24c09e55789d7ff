// Secrets set by an operator and granted in the manifest (`[grants] secrets = [...]`).
import * as raw from 'fnhost:function/secrets@0.1.0';
import { hostCall } from './errors.js';

/** The secret's value. Throws `NotFound` if it is granted but not set. */
export function get(name) {
  return hostCall(() => raw.get(name));
}
