/**
 * details v1 (Istio's `details.rb`): the same paperback for every book id.
 *
 *   GET /details/<id> → {"id":<id>,"author":"William Shakespeare","year":1595,"type":"paperback",
 *                        "pages":200,"publisher":"PublisherA","language":"English",
 *                        "ISBN-10":"1234567890","ISBN-13":"123-1234567890"}
 *   GET /health       → {"status":"Details is healthy"}
 */
import type { Server } from 'node:http';
import { createLoggedServer, sendJson, stdoutLog, type LogSink } from '../shared/http-server.js';

export interface DetailsOptions {
  readonly log?: LogSink;
}

export function createDetailsServer(options: DetailsOptions = {}): Server {
  return createLoggedServer((_req, res, url) => {
    const path = url.pathname;
    if (path === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
    // The original mounts a handler on the /details prefix and takes the last path segment.
    if (path !== '/details' && !path.startsWith('/details/')) return sendJson(res, 404, { error: 'not found' });
    const last = path.split('/').pop() ?? '';
    if (!/^[+-]?\d+$/.test(last)) return sendJson(res, 400, { error: 'please provide numeric product id' });
    return sendJson(res, 200, bookDetails(Number(last)));
  }, options.log ?? stdoutLog);
}

/** The book, key order as the original's JSON. */
export function bookDetails(id: number): Record<string, string | number> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}
