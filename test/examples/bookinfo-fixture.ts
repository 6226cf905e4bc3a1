/**
 * Test equipment for the Bookinfo example: serving its servers on 127.0.0.1:0, stub
 * backends that record what they receive, a stand-in sidecar proxy, the services as
 * child processes, and a small HTTP GET/POST.
 */
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { type Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A server listening on 127.0.0.1, and how to stop it. */
export interface Serving {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0; `close` also drops open (keep-alive or stalled) connections. */
export async function serve(server: Server): Promise<Serving> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export interface Recorded {
  readonly method: string;
  /** The request target as sent (origin or absolute form). */
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Stub extends Serving {
  readonly requests: Recorded[];
  /** Resolves when the stub has received `n` requests in total. */
  received(n: number): Promise<void>;
}

/** The requests a stub has seen, and waiters for a count of them. */
class RequestLog {
  readonly requests: Recorded[] = [];
  readonly #waiters: Array<{ n: number; resolve: () => void }> = [];

  add(r: Recorded): void {
    this.requests.push(r);
    for (const w of this.#waiters.filter((x) => this.requests.length >= x.n)) w.resolve();
  }

  received(n: number): Promise<void> {
    return this.requests.length >= n ? Promise.resolve() : new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}

/** What a stub does with a request: answer it, or (returning 'stall') never answer. */
export type StubReply = { readonly status: number; readonly json?: unknown } | 'stall';

/** A server that records every request (after reading its body) and answers as `reply` says. */
export async function startStub(reply: (r: Recorded) => StubReply): Promise<Stub> {
  const log = new RequestLog();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', target: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      log.add(r);
      const answer = reply(r);
      if (answer === 'stall') return;
      const body = answer.json === undefined ? '' : JSON.stringify(answer.json);
      res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const serving = await serve(server);
  return {
    ...serving,
    requests: log.requests,
    received: (n) => log.received(n),
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * One request (on a fresh connection unless an agent is given); rejects after 20 s so a
 * hung server fails the test instead of hanging it.
 */
export function http(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 20 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** How many filled stars a product page shows, and in which colors. */
export function stars(html: string): { readonly filled: number; readonly colors: readonly string[] } {
  const filled = html.match(/<span class="star">/g)?.length ?? 0;
  const colors = [...html.matchAll(/<div class="rating" style="color: ([^"]+)">/g)].map((m) => m[1] as string);
  return { filled, colors };
}

/**
 * A stand-in for the sidecars' outbound listener: takes absolute-form requests
 * (`GET http://reviews:9080/reviews/0`), records them, and forwards each to the port
 * `routes` gives for its Host header's name, as the local mesh's sidecar routes by Host.
 * Unknown hosts get 404 with a body naming the host.
 */
export async function startMeshProxy(routes: ReadonlyMap<string, number>): Promise<Stub> {
  const log = new RequestLog();
  const server = createServer((req, res) => {
    log.add({ method: req.method ?? '', target: req.url ?? '', headers: req.headers, body: '' });
    const name = String(req.headers.host ?? '').replace(/:\d+$/, '');
    const port = routes.get(name);
    if (port === undefined || !(req.url ?? '').startsWith('http://')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route to ${name}\n`);
      return;
    }
    const url = new URL(req.url ?? '');
    const upstream = request({ host: '127.0.0.1', port, method: req.method, path: url.pathname + url.search, headers: req.headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('upstream connect error\n');
    });
    req.pipe(upstream);
  });
  const serving = await serve(server);
  return {
    ...serving,
    requests: log.requests,
    received: (n) => log.received(n),
  };
}

/** A Bookinfo service run as its own process (`node dist/examples/bookinfo/src/<name>.js`). */
export interface Process {
  readonly url: string;
  /** Everything it printed on stdout so far. */
  stdout(): string;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Resolves when stdout contains a match for `pattern`; rejects after 10 s. */
  printed(pattern: RegExp): Promise<void>;
  /** SIGTERM, then the exit code (rejects if it has not exited within 10 s). */
  stop(): Promise<number | null>;
}

const SERVICES_DIR = fileURLToPath(new URL('../../examples/bookinfo/src/', import.meta.url));

/** Starts a service on 127.0.0.1 with PORT=0 and the given environment, and waits for its "listening" line. */
export async function startProcess(name: string, env: Readonly<Record<string, string>>): Promise<Process> {
  // Only PATH from the caller's environment, so a proxy set on the machine cannot leak in.
  const child = spawn(process.execPath, [join(SERVICES_DIR, `${name}.js`)], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    err += s;
  });
  const printedSomething = new EventEmitter();
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    out += s;
    printedSomething.emit('data');
  });
  // 'close' rather than 'exit': it comes after the last of stdout and stderr.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const printed = async (pattern: RegExp): Promise<void> => {
    const signal = AbortSignal.timeout(10_000);
    while (!pattern.test(out)) await Promise.race([once(printedSomething, 'data', { signal }), exited.then((code) => Promise.reject(new Error(`${name} exited with status ${code}; stderr: ${err}`)))]);
  };
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    await printed(new RegExp(`^${name} listening on http://127\\.0\\.0\\.1:\\d+$`, 'm'));
  } catch (err) {
    await stop();
    throw err;
  }
  const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? '0';
  return { url: `http://127.0.0.1:${port}`, stdout: () => out, stderr: () => err, printed, stop };
}
