// What starts the event handler (`Invoke`, `QueueBatch`, `Schedule`) and what it returns.
import { decodeUtf8, describe, isBytes, toBytes } from './bytes.js';
import { takeInput } from './body.js';
import { stringify } from './json.js';

/** A direct invoke: the caller's payload, as sent. */
export class Invoke {
  kind = 'invoke';

  constructor(payload) {
    this.payload = payload;
  }

  text() {
    return new TextDecoder().decode(this.payload);
  }

  /** The payload parsed as JSON (throws if it is not JSON or not UTF-8). */
  json() {
    return JSON.parse(decodeUtf8(this.payload));
  }
}

export class QueueMessage {
  constructor(id, queue, body, receiveCount) {
    this.id = id;
    this.queue = queue;
    this.body = body;
    this.receiveCount = receiveCount; // deliveries of this message, this one included
  }

  text() {
    return new TextDecoder().decode(this.body);
  }

  json() {
    return JSON.parse(decodeUtf8(this.body));
  }
}

/** Messages delivered by a queue trigger. Return `new EventResult(output, [ids])` to have some of
 * them redelivered. */
export class QueueBatch {
  kind = 'queue-batch';

  constructor(messages) {
    this.messages = messages;
  }
}

/** One tick of a schedule. */
export class Schedule {
  kind = 'schedule';

  constructor(schedule, scheduledUnixMs) {
    this.schedule = schedule;
    this.scheduledUnixMs = scheduledUnixMs;
  }
}

/** An object change delivered by a blob trigger (`event` is "put" or "delete"). */
export class BlobChange {
  kind = 'blob';

  constructor(bucket, key, event, size, sha256, receiveCount) {
    Object.assign(this, { bucket, key, event, size, sha256, receiveCount });
  }
}

/** The event handler's result. A handler may instead return the output alone. */
export class EventResult {
  constructor(output = new Uint8Array(), failedMessageIds = []) {
    this.output = output;
    this.failedMessageIds = failedMessageIds;
  }
}

/** The SDK's event for the bindings' `{tag, val}` variant. */
export function fromWit(event) {
  switch (event.tag) {
    case 'invoke':
      return new Invoke(takeInput(event.val));
    case 'queue-batch':
      return new QueueBatch(event.val.map((m) => new QueueMessage(m.id, m.queue, m.body, m.receiveCount)));
    case 'schedule':
      return new Schedule(event.val.schedule, Number(event.val.scheduledUnixMs));
    case 'blob': {
      const b = event.val;
      return new BlobChange(b.bucket, b.key, b.event, Number(b.size), b.sha256, b.receiveCount);
    }
    default:
      throw new Error(`unknown event kind ${event.tag}: this SDK is older than the host`);
  }
}

/** Output as bytes: bytes as is, a string as UTF-8, an object/array as JSON, null/undefined as empty. */
export function encodeOutput(value) {
  if (value === null || value === undefined) return new Uint8Array();
  if (typeof value === 'string' || isBytes(value)) return toBytes(value);
  if (typeof value === 'object' && typeof value.then !== 'function') return toBytes(stringify(value));
  throw new TypeError(
    `an event handler must return a Uint8Array, string, object, array, null or EventResult, not ${describe(value)}`,
  );
}

/** What an event handler returned, as the WIT event-result. */
export function toWitResult(value) {
  if (value instanceof EventResult) {
    return { output: encodeOutput(value.output), failedMessageIds: [...value.failedMessageIds].map(String) };
  }
  return { output: encodeOutput(value), failedMessageIds: [] };
}
