/** HTTP backends for end-to-end tests (test equipment; 127.0.0.1 only). */
import { createServer, request, Agent, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer as createNetServer, type Socket } from 'node:net';

export interface HttpBackend {
  readonly name: string;
  readonly port: number;
  calls: number;
  /** Emits `request` when a request's head arrives. */
  readonly events: EventEmitter;
  close(): Promise<void>;
}

/** Answers JSON `{backend, method, path, headers}`; `/status/N` answers status N. */
export async function startHttpBackend(name: string): Promise<HttpBackend> {
  const backend = { name, port: 0, calls: 0, events: new EventEmitter(), close: (): Promise<void> => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    backend.calls++;
    backend.events.emit('request', req.url);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      const body = JSON.stringify({ backend: name, method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      // As a service behind its own sidecar answers: with that sidecar's timing header,
      // which the calling proxy replaces with its own (Envoy's router sets it).
      res.writeHead(m === null ? 200 : Number(m[1]), { 'content-type': 'application/json', 'x-backend': name, 'x-envoy-upstream-service-time': '999999' });
      res.end(body);
    });
  });
  // `Expect: 100-continue`: paths under /reject refuse the body (417), others invite it.
  server.on('checkContinue', (req, res) => {
    if ((req.url ?? '').startsWith('/reject')) {
      res.writeHead(417, { 'content-length': '0', 'x-backend': name }).end();
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
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

/**
 * Where freePort looks: below Linux's ephemeral range (32768–60999). A port the kernel
 * hands out for `listen(0)` is one it also hands to outgoing connections, so between
 * the check and the proxy's own bind a client socket of a test running alongside could
 * take it (seen: EADDRINUSE, the gateway never ready).
 */
const FREE_PORT_FIRST = 20_000;
const FREE_PORT_SPAN = 12_000;

/** A free TCP port on 127.0.0.1 (for a Gateway server port the proxy will bind). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FREE_PORT_FIRST + Math.floor(Math.random() * FREE_PORT_SPAN);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${FREE_PORT_FIRST}-${FREE_PORT_FIRST + FREE_PORT_SPAN - 1} after 100 tries`);
}

function canListen(port: number): Promise<boolean> {
  const s = createNetServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
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

/**
 * A TCP echo server, and a WebSocket endpoint: an HTTP server that completes the RFC 6455
 * handshake on Upgrade and then echoes every byte back (enough to show the proxy tunnels
 * an upgraded connection both ways).
 */
export async function startEchoServers(): Promise<{ tcpPort: number; wsPort: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const tcp = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (c) => s.write(c));
    s.on('error', () => undefined);
  });
  const ws = createServer((_req, res) => res.writeHead(426).end());
  ws.on('upgrade', (req, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.on('data', (c) => socket.write(c));
    socket.on('error', () => undefined);
  });
  await Promise.all([new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r)), new Promise<void>((r) => ws.listen(0, '127.0.0.1', r))]);
  const port = (srv: { address(): unknown }) => ((srv.address() as { port: number }).port);
  return {
    tcpPort: port(tcp),
    wsPort: port(ws),
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => tcp.close(() => r())), new Promise<void>((r) => ws.close(() => r()))]);
    },
  };
}

/** Opens a raw TCP connection, sends `first`, and collects what comes back until `until` matches. */
export function rawExchange(port: number, first: string, until: RegExp, then?: (s: Socket, got: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createNetConnection(port);
    let got = '';
    let stage = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`timed out; got ${JSON.stringify(got)}`));
    }, 10_000);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (stage === 0 && then !== undefined && /\r\n\r\n/.test(got)) {
        stage = 1;
        then(s, got);
      }
      if (until.test(got)) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.write(first);
  });
}

import { connect as netConnect } from 'node:net';
function createNetConnection(port: number): Socket {
  return netConnect(port, '127.0.0.1');
}

export { once };
