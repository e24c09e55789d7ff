// Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.
//
// HTTP:  POST /incr/<key>  → {"key": k, "value": n}      GET /get/<key> → {"key": k, "value": n}
//        DELETE /del/<key> → {"key": k, "deleted": true}  GET /keys?prefix=p → {"keys": [...]}
//        GET /bucket/<bucket>/<key> reads any bucket: an ungranted one → 403 {"error": "denied", ...}
// Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
// A host error is answered as {"error": code, "message": ...} (HTTP status by kind), not as a failure.
import { App, HostError, Invoke, Response, kv } from 'fnhost';

const BUCKET = 'counters';
const STATUS = { denied: 403, 'not-found': 404, 'too-large': 413, 'limit-exceeded': 429, unavailable: 503 };

const app = new App();

function run(op, { bucket = BUCKET, key = '', prefix = '' } = {}) {
  switch (op) {
    case 'incr': {
      const value = Number(kv.getText(bucket, key) ?? '0') + 1;
      kv.set(bucket, key, String(value));
      return { key, value };
    }
    case 'get':
      return { key, value: Number(kv.getText(bucket, key) ?? '0') };
    case 'delete':
      kv.delete(bucket, key);
      return { key, deleted: true };
    case 'list':
      return { keys: kv.listKeys(bucket, prefix) };
    default:
      throw new Error(`unknown op ${JSON.stringify(op)} (incr, get, delete, list)`);
  }
}

const failure = (e) => ({ error: e.code, message: e.message });

app.http((req) => {
  const parts = req.path.replace(/^\/+|\/+$/g, '').split('/');
  const routes = {
    'POST incr': () => run('incr', { key: parts[1] }),
    'GET get': () => run('get', { key: parts[1] }),
    'DELETE del': () => run('delete', { key: parts[1] }),
    'GET keys': () => run('list', { prefix: req.query.prefix ?? '' }),
    'GET bucket': () => run('get', { bucket: parts[1], key: parts[2] }),
  };
  const want = { incr: 2, get: 2, del: 2, keys: 1, bucket: 3 };
  const route = routes[`${req.method} ${parts[0]}`];
  if (route === undefined || parts.length !== want[parts[0]]) {
    return Response.json({ error: 'not-found', message: `no route ${req.method} ${req.path}` }, 404);
  }
  try {
    return Response.json(route());
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    return Response.json(failure(e), STATUS[e.code] ?? 400);
  }
});

app.event((event) => {
  if (!(event instanceof Invoke)) {
    throw new Error(`counter handles direct invokes only, not ${event.constructor.name}`);
  }
  const { op, ...args } = event.json();
  try {
    return run(op, args);
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    return failure(e);
  }
});

export const { handleHttp, handleEvent } = app.world();
