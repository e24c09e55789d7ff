// Fetch: makes the outbound HTTP request its event asks for (`http` of the SDK); it answers like
// guests/python/fetch.
//
// Event: {"url": u, "method": "GET", "headers": {name: value}, "body": text, "timeout_ms": n}
//        → {"status": s, "headers": [[name, value]...], "body": text}
// A host error is answered as {"error": code, "message": ...}, not as a failure.
import { App, HostError, Invoke, http } from 'fnhost';

const app = new App();

app.event((event) => {
  if (!(event instanceof Invoke)) throw new Error('fetch handles direct invokes only');
  const args = event.json();
  try {
    const r = http.request(args.method ?? 'GET', args.url, {
      headers: args.headers ?? {},
      body: args.body ?? '',
      timeoutMs: args.timeout_ms ?? undefined,
    });
    return { status: r.status, headers: [...r.headers], body: r.text() };
  } catch (e) {
    if (e instanceof HostError) return { error: e.code, message: e.message };
    throw e;
  }
});

export const { handleHttp, handleEvent } = app.world();
