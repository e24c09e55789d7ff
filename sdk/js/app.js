// `App`: registers the handlers and turns them into the `handleHttp`/`handleEvent` exports of the
// `function` world. A guest's app.js ends with
//
//     export const { handleHttp, handleEvent } = app.world();
//
// The module's top level runs at build time (componentize-js snapshots it), so a handler that is
// not a function, is async or takes too many parameters fails the build, not the first request.
import { putOutput, takeInput } from './body.js';
import { Context } from './context.js';
import { fromWit, toWitResult } from './events.js';
import { Request, toResponse } from './http.js';

export class App {
  constructor() {
    this._http = null;
    this._event = null;
  }

  /** Register the HTTP handler: `fn(request, ctx)` returns a `Response` (or object/array/string/bytes). */
  http(fn) {
    this._http = checkHandler(fn, 'app.http', '(request, ctx)');
    return fn;
  }

  /** Register the event handler: `fn(event, ctx)` with an `Invoke`, `QueueBatch` or `Schedule`; it
   * returns an `EventResult`, or the output alone (bytes, string, object/array as JSON, null). */
  event(fn) {
    this._event = checkHandler(fn, 'app.event', '(event, ctx)');
    return fn;
  }

  /** The exports of the `function` world, to re-export from app.js under these two names. */
  world() {
    return {
      handleHttp: (ctx, request) => {
        if (this._http === null) throw 'this function has no HTTP handler (register one with app.http)';
        return guarded(() => {
          const req = new Request(request.method, request.pathWithQuery, request.headers, takeInput(request.body));
          const resp = toResponse(this._http(req, Context.fromWit(ctx)));
          return { status: resp.status, headers: resp.headers.items(), body: putOutput(resp.body) };
        });
      },
      handleEvent: (ctx, event) => {
        if (this._event === null) throw 'this function has no event handler (register one with app.event)';
        const ev = fromWit(event);
        return guarded(() => {
          const result = toWitResult(this._event(ev, Context.fromWit(ctx)));
          return { ...result, output: putOutput(result.output) };
        });
      },
    };
  }
}

function checkHandler(fn, where, params) {
  if (typeof fn !== 'function') {
    throw new TypeError(`${where}: expected a function ${params}, got ${fn === null ? 'null' : typeof fn}`);
  }
  if (fn.constructor?.name === 'AsyncFunction') {
    throw new TypeError(`${where}: ${fn.name || 'the handler'} is async; handlers must be synchronous ${params}`);
  }
  if (fn.length > 2) {
    throw new TypeError(`${where}: ${fn.name || 'the handler'} takes ${fn.length} parameters; it is called as ${params}`);
  }
  return fn;
}

// An exception escaping a handler is the function's failure: the WIT `err` string (outcome
// GuestError), with the stack written to stderr, which the host records with the invocation.
// componentize-js traps on a thrown non-string, so every failure is turned into one here.
function guarded(run) {
  let result;
  try {
    result = run();
  } catch (e) {
    throw failure(e);
  }
  return result;
}

export function failure(e) {
  if (e === 'out of memory' || (e instanceof Error && e.message === 'out of memory')) {
    return 'MemoryError: out of memory'; // SpiderMonkey's OOM; the host reports it as MemoryLimit
  }
  if (!(e instanceof Error)) return typeof e === 'string' ? e : `uncaught ${String(e)}`;
  const stack = typeof e.stack === 'string' ? e.stack.trimEnd() : '';
  if (stack) console.error(`${e.name}: ${e.message}\n${shortened(stack)}`);
  const where = guestFrame(stack);
  return `${e.name}: ${e.message}${where ? ` (at ${where})` : ''}`;
}

// A runaway recursion's stack is thousands of identical frames: the innermost ones say enough.
function shortened(stack, keep = 40) {
  const frames = stack.split('\n');
  if (frames.length <= keep) return stack;
  return [...frames.slice(0, keep), `... ${frames.length - keep} more frames`].join('\n');
}

// The innermost frame in the guest's own code: "app.js:12:5", not the SDK's or the bindings'.
function guestFrame(stack) {
  for (const line of stack.split('\n')) {
    const at = line.slice(line.indexOf('@') + 1);
    if (at && !at.startsWith('.fnhost/') && !at.includes('initializer.js')) return at;
  }
  return '';
}
