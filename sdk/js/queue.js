// Durable queues granted in the manifest (`[grants] queues = [...]`).
import * as raw from 'fnhost:function/queue@0.2.0';
import { hostCall } from './errors.js';
import { toBytes } from './bytes.js';

/** Append a message (a string as UTF-8) to `queue`; returns the message id. */
export function publish(queue, body) {
  return hostCall(() => raw.publish(queue, toBytes(body)));
}
