/**
 * What the four services share on the serving side: a `node:http` server that logs one
 * line per request, and small response helpers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

/** Receives one finished log line (no trailing newline). */
export type LogSink = (line: string) => void;

export const stdoutLog: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Handles one request; `url` is its parsed target (path and query). */
export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

/** Request bodies are tiny forms and JSON documents. */
const MAX_REQUEST_BODY_BYTES = 64 * 1024;

/**
 * A server that runs `handler` and logs `<method> <path> <status> <ms>ms` when each
 * response is done (or the client went away: the status is then what was about to be
 * sent). A target that is not a URL gets a 400; handler exceptions a 500, so one bad
 * request cannot stop the service.
 */
export function createLoggedServer(handler: Handler, log: LogSink): Server {
  return createServer((req, res) => {
    const start = performance.now();
    res.once('close', () => {
      log(`${req.method ?? '-'} ${req.url ?? '-'} ${res.statusCode} ${Math.round(performance.now() - start)}ms`);
    });
    const url = requestUrl(req.url ?? '/');
    if (url === null) {
      sendText(res, 400, 'Bad Request\n');
      return;
    }
    try {
      handler(req, res, url);
    } catch (err) {
      internalError(res, err);
    }
  });
}

/** Reports an unexpected error (a bug) and answers 500 if nothing was sent yet. */
export function internalError(res: ServerResponse, err: unknown): void {
  process.stderr.write(`bookinfo: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  if (!res.headersSent) sendText(res, 500, 'Internal Server Error\n');
  else res.destroy();
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value));
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  send(res, status, 'text/plain; charset=utf-8', text);
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  send(res, status, 'text/html; charset=utf-8', html);
}

export function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Readonly<Record<string, string | readonly string[]>> = {}): void {
  res.writeHead(status, { ...extra, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers `status` with an empty body and `Location` (login and logout redirects). */
export function redirect(res: ServerResponse, location: string, extra: Readonly<Record<string, string | readonly string[]>> = {}): void {
  res.writeHead(302, { ...extra, location, 'content-length': 0 });
  res.end();
}

/**
 * Reads a small request body; resolves null (after answering 413) when it is too large,
 * and null when the client goes away mid-body.
 */
export function readBody(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BODY_BYTES) {
        req.removeAllListeners('data');
        res.setHeader('connection', 'close');
        sendText(res, 413, 'Request body too large\n');
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    // Whichever comes first wins: after 'end', a later 'close' changes nothing.
    req.on('error', () => resolve(null));
    req.on('close', () => resolve(null));
  });
}

/**
 * The path and query of a request target, or null if it is not one. An origin-form
 * target is appended to a dummy origin rather than resolved against it, so `//x` stays a
 * path instead of becoming a host.
 */
function requestUrl(target: string): URL | null {
  try {
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target);
  } catch {
    return null;
  }
}
