// Typed errors for the WIT `error` variant that every capability call may return.
// componentize-js throws a host error as an Error whose `payload` is `{tag, val}`.

export class HostError extends Error {
  /** The WIT error case: "denied", "not-found", "too-large", "limit-exceeded", "unavailable", "invalid", "timeout". */
  static code = 'error';

  constructor(message = '') {
    super(message || new.target.code);
    this.name = new.target.name;
    this.code = new.target.code;
  }
}

/** The manifest does not grant this bucket, queue or secret. */
export class Denied extends HostError {
  static code = 'denied';
}

/** A missing key or an unset secret. */
export class NotFound extends HostError {
  static code = 'not-found';
}

/** A key, value, message or name is over its size limit. */
export class TooLarge extends HostError {
  static code = 'too-large';
}

/** The per-invocation host-call budget (count or bytes) is spent. */
export class LimitExceeded extends HostError {
  static code = 'limit-exceeded';
}

/** The backing store failed; the call may be retried. */
export class Unavailable extends HostError {
  static code = 'unavailable';
}

/** Malformed argument (empty key, bad name...). */
export class InvalidArgument extends HostError {
  static code = 'invalid';
}

/** An outbound HTTP request got no complete response in time. */
export class Timeout extends HostError {
  static code = 'timeout';
}

const BY_TAG = {
  denied: Denied,
  'not-found': NotFound,
  'too-large': TooLarge,
  'limit-exceeded': LimitExceeded,
  unavailable: Unavailable,
  invalid: InvalidArgument,
  timeout: Timeout,
};

/** Runs a generated import binding; a WIT error becomes its `HostError` subclass. */
export function hostCall(call) {
  try {
    return call();
  } catch (e) {
    const cls = e !== null && typeof e === 'object' && e.payload ? BY_TAG[e.payload.tag] : undefined;
    if (cls === undefined) throw e; // not a WIT error: a bug in the bindings, not something to handle
    throw new cls(typeof e.payload.val === 'string' ? e.payload.val : '');
  }
}
