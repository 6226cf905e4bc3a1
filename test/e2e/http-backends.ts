/** HTTP backends for end-to-end tests (test equipment; 127.0.0.1 only). */
import { createServer, request, Agent, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';

export interface HttpBackend {
  readonly name: string;
  readonly port: number;
  calls: number;
  close(): Promise<void>;
}

/** Answers JSON `{backend, method, path, headers}`; `/status/N` answers status N. */
export async function startHttpBackend(name: string): Promise<HttpBackend> {
  const backend = { name, port: 0, calls: 0, close: (): Promise<void> => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    backend.calls++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      const body = JSON.stringify({ backend: name, method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(m === null ? 200 : Number(m[1]), { 'content-type': 'application/json', 'x-backend': name });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  backend.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  backend.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return backend;
}

/** A free TCP port on 127.0.0.1 (for a Gateway server port the proxy will bind). */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const addr = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export const keepAliveAgent = new Agent({ keepAlive: true, maxSockets: 16 });

/** One request to `port` on 127.0.0.1 with the given request-target (origin or absolute form). */
export function send(port: number, target: string, headers: Record<string, string> = {}, method = 'GET', body?: string, agent: Agent | false = keepAliveAgent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: target, method, headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
