// Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.
// `POST /echo` returns the request body as is, so this guest doubles as the large-body benchmark.
import { App, Invoke, Response } from 'fnhost';

const app = new App();

app.http((req, ctx) => {
  if (req.path === '/echo') {
    return new Response(req.body, 200, {
      'content-type': req.headers.get('content-type') ?? 'application/octet-stream',
    });
  }
  if (req.path === '/hello') {
    return Response.json({ message: `Hello, ${req.query.name ?? 'world'}!` });
  }
  return Response.json({
    method: req.method,
    path: req.path,
    query: req.query,
    user_agent: req.headers.get('User-Agent'),
    body_length: req.body.length,
    function: ctx.functionName,
    version: ctx.functionVersion,
  });
});

app.event((event, ctx) => {
  if (!(event instanceof Invoke)) return { message: `Hello, ${event.constructor.name}!` };
  let data;
  try {
    data = event.json();
  } catch {
    return event.payload; // not JSON (or not UTF-8): echoed as is
  }
  if (data !== null && typeof data === 'object' && !Array.isArray(data) && typeof data.name === 'string') {
    return { message: `Hello, ${data.name}!` };
  }
  return event.payload;
});

export const { handleHttp, handleEvent } = app.world();
