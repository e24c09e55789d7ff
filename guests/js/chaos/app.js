// Chaos: a test guest that misbehaves on command, to exercise the host's limits and sandbox.
// The commands and outputs are those of guests/python/chaos that JavaScript can express; the
// invoke payload is one of:
//
//   ok           return "ok"
//   loop         spin forever (fuel or the deadline stops it)
//   spin:N       burn CPU for N loop iterations, then return {"spun": N}
//   sleep:MS     wait MS milliseconds of wall-clock time, busy (JS has no blocking sleep)
//   alloc:MB     allocate and touch MB MiB; over the memory cap SpiderMonkey reports "out of
//                memory", which the SDK returns as a MemoryError (outcome MemoryLimit)
//   recurse      unbounded recursion: SpiderMonkey throws "too much recursion" (outcome GuestError)
//   stdout:N     write N bytes to stdout (console.log adds a newline)
//   trap         throw a non-string past the SDK: componentize-js executes `unreachable` (a trap)
//   raise        throw an Error: the function's failure (outcome GuestError)
import { App, Invoke } from 'fnhost';

const app = new App();

function deeper(n) {
  return deeper(n + 1) + 1;
}

app.event((event) => {
  if (!(event instanceof Invoke)) return { ignored: event.constructor.name };
  const text = event.text().trim();
  const colon = text.indexOf(':');
  const [command, arg] = colon < 0 ? [text, ''] : [text.slice(0, colon), text.slice(colon + 1)];
  switch (command) {
    case 'ok':
      return 'ok';
    case 'loop':
      for (;;) {}
    case 'spin': {
      let total = 0;
      for (let i = 0; i < Number(arg); i++) total += i;
      return { spun: Number(arg) };
    }
    case 'sleep': {
      const end = Date.now() + Number(arg);
      while (Date.now() < end) {}
      return { slept_ms: Number(arg) };
    }
    case 'alloc': {
      const block = new Uint8Array(Number(arg) * 1024 * 1024);
      for (let i = 0; i < block.length; i += 4096) block[i] = 1; // touch every page
      return { allocated_mb: Number(arg) };
    }
    case 'recurse':
      return { depth: deeper(0) };
    case 'stdout':
      console.log('x'.repeat(Number(arg)));
      return { printed: Number(arg) };
    case 'raise':
      throw new Error('chaos: raised on purpose');
    default:
      throw new Error(`unknown chaos command ${JSON.stringify(command)} (see guests/js/chaos/app.js)`);
  }
});

const world = app.world();
export const handleHttp = world.handleHttp;

export function handleEvent(ctx, event) {
  if (event.tag === 'invoke' && new TextDecoder().decode(event.val).trim() === 'trap') {
    throw { trap: 'on purpose' }; // not a string: the component traps, as an abort would
  }
  return world.handleEvent(ctx, event);
}
