// {{name}}: GET /hello?name=... greets and counts visits in the kv bucket `visits`; any event
// returns the count. Build with `fnhost build .`, test with `python -m pytest test_function.py`.
import { App, Response, kv, log } from 'fnhost';

const BUCKET = 'visits';
const app = new App();

const visits = () => Number(kv.getText(BUCKET, 'hello') ?? '0');

app.http((req, ctx) => {
  if (req.path !== '/hello') {
    return Response.json({ error: 'not-found', message: `no route ${req.path}` }, 404);
  }
  const count = visits() + 1;
  kv.set(BUCKET, 'hello', String(count));
  log.info(`visit ${count}`);
  return Response.json({ message: `Hello, ${req.query.name ?? 'world'}!`, visits: count });
});

app.event((event, ctx) => ({ visits: visits() }));

export const { handleHttp, handleEvent } = app.world(); // the component's two exports
