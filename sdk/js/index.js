// fnhost guest SDK for JavaScript, over the componentize-js bindings of sdk/wit/fnhost.wit.
//
//     import { App, Response, kv } from 'fnhost';
//
//     const app = new App();
//     app.http((req, ctx) => Response.json({ hello: req.query.name ?? 'world' }));
//     export const { handleHttp, handleEvent } = app.world();
//
// Build with `fnhost build DIR` (app.js, or package.json's "main", is the entry module).
import * as kv from './kv.js';
import * as http from './outbound.js';
import * as log from './log.js';
import * as queue from './queue.js';
import * as secrets from './secrets.js';

export { App } from './app.js';
export { Context } from './context.js';
export { Denied, HostError, InvalidArgument, LimitExceeded, NotFound, Timeout, TooLarge, Unavailable } from './errors.js';
export { EventResult, Invoke, QueueBatch, QueueMessage, Schedule } from './events.js';
export { Headers, Request, Response } from './http.js';
export { stringify as jsonStringify } from './json.js';
export { http, kv, log, queue, secrets };
