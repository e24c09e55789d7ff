// Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.
//
// HTTP:  POST /incr/<key>  → {"key": k, "value": n}      GET /get/<key> → {"key": k, "value": n}
//        DELETE /del/<key> → {"key": k, "deleted": true}  GET /keys?prefix=p → {"keys": [...]}
//        GET /bucket/<bucket>/<key> reads any bucket: an ungranted one → 403 {"error": "denied", ...}
// Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
//        {"op": "claim", "key": k} → {"key": k, "claimed": b} (compare-and-swap only if absent)
//        {"op": "lease", "key": k} → {"key": k, "leased": true} (set for 200 ms)
//        {"op": "pair", "key": k, "prefix": p} → {"values": ["1", "2", null]} (set-many k, p; get-many k, p, k-absent)
// A host error is answered as {"error": code, "message": ...} (HTTP status by kind), not as a failure.
import { App, HostError, Invoke, Response, blobs, kv } from 'fnhost';

const BUCKET = 'counters';
const LEASE_S = 0.2; // how long `lease` keeps its key (the TTL tests wait past it)
const STATUS = { denied: 403, 'not-found': 404, 'too-large': 413, 'limit-exceeded': 429, unavailable: 503 };

const app = new App();

function run(op, { bucket = BUCKET, key = '', prefix = '' } = {}) {
  switch (op) {
    case 'incr': // atomic: concurrent invocations never lose a count
      return { key, value: kv.increment(bucket, key, 1) };
    case 'claim':
      return { key, claimed: kv.compareAndSwap(bucket, key, null, 'claimed') };
    case 'lease':
      kv.setWithTtl(bucket, key, 'leased', LEASE_S);
      return { key, leased: true };
    case 'pair': {
      kv.setMany(bucket, [[key, '1'], [prefix, '2']]);
      const decode = (v) => (v === null ? null : new TextDecoder().decode(v));
      return { values: kv.getMany(bucket, [key, prefix, `${key}-absent`]).map(decode) };
    }
    case 'get':
      return { key, value: Number(kv.getText(bucket, key) ?? '0') };
    case 'delete':
      kv.delete(bucket, key);
      return { key, deleted: true };
    case 'list':
      return { keys: kv.listKeys(bucket, prefix) };
    case 'blob-copy': // streams object key to prefix in 64 KiB reads, then deletes key
      return blobCopy(bucket, key, prefix);
    default:
      throw new Error(`unknown op ${JSON.stringify(op)} (incr, get, delete, list, claim, lease, pair)`);
  }
}

function blobCopy(bucket, src, dst) {
  const reader = new blobs.Reader(bucket, src);
  const writer = new blobs.Writer(bucket, dst, 'application/x-copy');
  for (const chunk of reader.chunks(65536)) writer.write(chunk);
  reader.close();
  const info = writer.finish();
  const stat = blobs.stat(bucket, dst);
  blobs.delete(bucket, src);
  const keys = blobs.list(bucket);
  const agrees = JSON.stringify(stat) === JSON.stringify(info) && blobs.get(bucket, dst).length === info.size;
  return { size: info.size, sha256: info.sha256, content_type: info.contentType, keys, stat_agrees: agrees };
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
