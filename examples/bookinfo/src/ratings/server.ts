/**
 * ratings v1 (Istio's `ratings.js`, in-memory variant): every book has the same two
 * ratings until a POST replaces them.
 *
 *   GET  /ratings/<id>  → {"id":<id>,"ratings":{"Reviewer1":5,"Reviewer2":4}}
 *   POST /ratings/<id>  body {"Reviewer1":3,...} → stores and returns {"id":<id>,"ratings":{...}}
 *   GET  /health        → {"status":"Ratings is healthy"}
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createLoggedServer, internalError, readBody, sendJson, stdoutLog, type LogSink } from '../shared/http-server.js';

export interface RatingsOptions {
  readonly log?: LogSink;
}

type Ratings = Readonly<Record<string, unknown>>;

const DEFAULT_RATINGS: Ratings = { Reviewer1: 5, Reviewer2: 4 };

export function createRatingsServer(options: RatingsOptions = {}): Server {
  // Ratings posted by users, per product id (the original keeps them in memory too).
  const posted = new Map<number, Ratings>();
  return createLoggedServer((req, res, url) => {
    const path = url.pathname;
    if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'Ratings is healthy' });
    // The original dispatches on /^\/ratings\/[0-9]*/ and parseInt()s the last segment.
    if (!/^\/ratings\/[0-9]*/.test(path)) return sendJson(res, 404, { error: 'not found' });
    const id = parseInt(path.split('/').pop() ?? '', 10);
    if (req.method === 'GET') {
      if (Number.isNaN(id)) return sendJson(res, 400, { error: 'please provide numeric product ID' });
      return sendJson(res, 200, { id, ratings: posted.get(id) ?? DEFAULT_RATINGS });
    }
    if (req.method === 'POST') return void post(req, res, id, posted).catch((err: unknown) => internalError(res, err));
    res.setHeader('allow', 'GET, POST');
    return sendJson(res, 405, { error: 'method not allowed' });
  }, options.log ?? stdoutLog);
}

async function post(req: IncomingMessage, res: ServerResponse, id: number, posted: Map<number, Ratings>): Promise<void> {
  const body = await readBody(req, res);
  if (body === null) return;
  if (Number.isNaN(id)) return sendJson(res, 400, { error: 'please provide numeric product ID' });
  let ratings: unknown;
  try {
    ratings = JSON.parse(body);
  } catch {
    return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
  }
  if (typeof ratings !== 'object' || ratings === null || Array.isArray(ratings)) {
    return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
  }
  posted.set(id, ratings as Ratings);
  sendJson(res, 200, { id, ratings });
}
