/**
 * Bytes that span many reads through the HTTP/1.1 engine arrive intact: large bodies both
 * ways (Content-Length and chunked), pipelined requests split across reads, a response
 * head split across reads, a retried request whose body took several reads, and a CONNECT
 * tunnel carrying megabytes. The proxy reads its sockets into one buffer each, which the
 * next read overwrites (src/proxy/socket-reader.ts): these are the places where bytes
 * outlive a read. Control plane, sidecar and backends on 127.0.0.1, in this process.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { startEchoServers } from './http-backends.js';

const log = new Logger({ level: 'warn' });
/** Several hundred reads of the proxy's 16 KiB buffer each way. */
const BIG = 4 * 1024 * 1024;
const DATA = randomBytes(BIG);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const DATA_SHA = sha(DATA);

/**
 * `/echo`: the request body back as it streams in (with the request's Content-Length,
 * or chunked); `/bytes/N`: the first N bytes of DATA in 64 KiB writes (`?chunked`:
 * without a length); `x-fail-first: id`: 503 (with an 8 KiB body) once for that id,
 * after the whole request body is read.
 *
 * Back-pressure all the way (`?hold`), so that the proxy's writes stop completing at once
 * and it has to pause: `/bytes` emits `events` 'blocked' when its socket stops taking
 * writes, or 'sent' when it never did; `/echo` reads nothing of the body until `release`
 * is emitted (once: later requests are not held).
 */
async function startMirror(): Promise<TestServer> {
  const failed = new Set<string>();
  const events = new EventEmitter();
  let released = false;
  events.once('release', () => (released = true));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://mirror');
    const hold = url.searchParams.has('hold');
    const id = req.headers['x-fail-first'];
    if (typeof id === 'string' && !failed.has(id)) {
      failed.add(id);
      req.resume();
      // With a body of its own, as Envoy's local 503s have: more bytes read over the kept ones.
      const busy = Buffer.alloc(8192, 'busy ');
      req.on('end', () => res.writeHead(503, { 'content-length': String(busy.length) }).end(busy));
      return;
    }
    if (url.pathname === '/echo') {
      const length = req.headers['content-length'];
      res.writeHead(200, length === undefined ? {} : { 'content-length': length });
      if (hold && !released) {
        req.pause();
        events.once('release', () => req.pipe(res));
      } else {
        req.pipe(res);
      }
      return;
    }
    const m = /^\/bytes\/(\d+)$/.exec(url.pathname);
    if (m === null) {
      res.writeHead(404).end();
      return;
    }
    req.resume();
    const body = DATA.subarray(0, Number(m[1]));
    res.writeHead(200, url.searchParams.has('chunked') ? {} : { 'content-length': String(body.length) });
    let at = 0;
    let blocked = false;
    const more = (): void => {
      while (at < body.length) {
        const ok = res.write(body.subarray(at, at + 65_536));
        at += 65_536;
        if (!ok) {
          if (hold && !blocked) events.emit('blocked');
          blocked = true;
          res.once('drain', more);
          return;
        }
      }
      res.end();
      if (hold && !blocked) events.emit('sent');
    };
    more();
  });
  server.keepAliveTimeout = 60_000;
  return serve(server, events, () => server.closeAllConnections());
}

interface TestServer {
  readonly port: number;
  readonly events: EventEmitter;
  close(): Promise<void>;
}

/** `server` listening on a port of 127.0.0.1 the kernel picks; `close` ends its connections (`endConnections`), then it. */
async function serve(server: Server | NetServer, events: EventEmitter, endConnections: () => void): Promise<TestServer> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    events,
    close: () => {
      endConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/**
 * A server that answers every request in two writes, the second only after the request
 * body's second byte arrived: its head's first part (`events` 'first-part' once written),
 * then the rest of the head and the body `split`.
 */
async function startSplitter(): Promise<TestServer> {
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let got = '';
    let stage = 0;
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const body = got.length - end - 4;
      if (stage === 0 && body >= 1) {
        stage = 1;
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/pl');
        events.emit('first-part');
      }
      if (stage === 1 && body >= 2) {
        stage = 2;
        s.write('ain\r\nContent-Length: 5\r\n\r\nsplit');
      }
    });
  });
  return serve(server, events, () => {
    for (const s of sockets) s.destroy();
  });
}

interface Response {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Reads HTTP/1.1 responses off a raw socket, in order (test equipment: Content-Length or chunked bodies). */
class ResponseReader {
  #buf = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  async next(): Promise<Response> {
    for (;;) {
      const r = this.#parse();
      if (r !== null) return r;
      if (this.#closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`);
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  #parse(): Response | null {
    const buf = this.#buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const status = Number((statusLine as string).split(' ')[1]);
    let at = end + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', at);
        if (eol < 0) return null;
        const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
        if (buf.length < eol + 2 + size + 2) return null;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const n = Number(headers['content-length'] ?? 0);
      if (buf.length < at + n) return null;
      body = Buffer.from(buf.subarray(at, at + n));
      at += n;
    }
    this.#buf = buf.subarray(at);
    return { status, headers, body };
  }
}

function rawClient(port: number): Promise<{ socket: Socket; reader: ResponseReader }> {
  const socket = connect(port, '127.0.0.1');
  const reader = new ResponseReader(socket);
  return once(socket, 'connect').then(() => ({ socket, reader }));
}

/**
 * One request through node:http: the body written in 64 KiB pieces as the socket takes
 * them, the response read as it comes. `holdResponse`: not read until that promise
 * settles; `onBlocked`: called once when the connection first stops taking the body;
 * `agent`: a keep-alive agent (default: a connection of its own).
 */
function exchange(
  port: number,
  path: string,
  headers: Record<string, string>,
  method: string,
  body: Buffer | null,
  opts: { holdResponse?: Promise<unknown>; onBlocked?: () => void; agent?: Agent } = {},
): Promise<{ status: number; body: Buffer }> {
  const req = request({ host: '127.0.0.1', port, path, method, headers, agent: opts.agent ?? false });
  const response = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      if (opts.holdResponse !== undefined) {
        res.pause();
        void opts.holdResponse.then(() => res.resume());
      }
    });
  });
  const send = async (): Promise<void> => {
    let blocked = false;
    for (let i = 0; body !== null && i < body.length; i += 65_536) {
      if (req.write(body.subarray(i, i + 65_536))) continue;
      if (!blocked) opts.onBlocked?.();
      blocked = true;
      await once(req, 'drain');
    }
    if (!blocked) opts.onBlocked?.();
    req.end();
  };
  return send().then(() => response);
}

function config(mirror: number, splitter: number, tcpEcho: number): string {
  const service = (name: string, port: number, backendPort: number, protocol = 'http') => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {selector: {app: ${name}}, ports: [{name: ${protocol}, port: ${port}}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {${protocol}: ${backendPort}}, labels: {app: ${name}}}
`;
  return `${service('mirror', 8080, mirror)}${service('splitter', 8080, splitter)}${service('tcp-echo', 9000, tcpEcho, 'tcp')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mirror}
spec:
  hosts: [mirror]
  http:
  - route: [{destination: {host: mirror}}]
    retries: {attempts: 2, retryOn: 5xx}
`;
}

describe('bytes spanning many reads through the HTTP/1.1 engine', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-h1-bytes-'));
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;
  let mirror: Awaited<ReturnType<typeof startMirror>>;
  let splitter: Awaited<ReturnType<typeof startSplitter>>;
  let echo: Awaited<ReturnType<typeof startEchoServers>>;

  before(async () => {
    [mirror, splitter, echo] = await Promise.all([startMirror(), startSplitter(), startEchoServers()]);
    writeFileSync(join(dir, 'mesh.yaml'), config(mirror.port, splitter.port, echo.tcpPort));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, adminPort: 0, statsPort: 0, outboundPort: 0, log, type: 'sidecar', id: 'client-sidecar', serviceAccount: 'client', labels: { app: 'client' } });
    await sidecar.start();
    const ready = (s: { clusters: ReadonlyMap<string, { endpoints: readonly unknown[] }> }, name: string): boolean => (s.clusters.get(name)?.endpoints.length ?? 0) > 0;
    await sidecar.waitFor((s) => s.routes.has('8080') && ready(s, 'outbound|8080||mirror.default.svc.cluster.local') && ready(s, 'outbound|8080||splitter.default.svc.cluster.local') && ready(s, 'outbound|9000||tcp-echo.default.svc.cluster.local'));
    port = sidecar.listenerPort('virtualOutbound') as number;
  });

  /** Requests on other connections: while bytes wait in the proxy for a reader, other reads happen. */
  const otherTraffic = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) assert.equal((await exchange(port, '/bytes/2000', { host: 'mirror:8080' }, 'GET', null)).status, 200);
  };

  after(async () => {
    await sidecar?.close();
    await cp?.close();
    await Promise.all([mirror?.close(), splitter?.close(), echo?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams 4 MiB request and response bodies intact, with Content-Length and chunked', async () => {
    const host = { host: 'mirror:8080' };
    const sized = await exchange(port, '/echo', { ...host, 'content-length': String(BIG) }, 'POST', DATA);
    assert.equal(sized.status, 200);
    assert.equal(sized.body.length, BIG);
    assert.equal(sha(sized.body), DATA_SHA, 'Content-Length body echoed intact');
    const chunked = await exchange(port, '/echo', { ...host, 'transfer-encoding': 'chunked' }, 'POST', DATA);
    assert.equal(chunked.status, 200);
    assert.equal(sha(chunked.body), DATA_SHA, 'chunked body echoed intact');
    for (const path of [`/bytes/${BIG}`, `/bytes/${BIG}?chunked`]) {
      const down = await exchange(port, path, host, 'GET', null);
      assert.equal(down.status, 200);
      assert.equal(sha(down.body), DATA_SHA, `${path} intact`);
    }
  });

  it('keeps 4 MiB bodies intact while the receiving side stops reading and other requests go through', async () => {
    const host = { host: 'mirror:8080' };
    // Upload: the server reads nothing until the client can write no more.
    const up = await exchange(port, '/echo?hold', { ...host, 'content-length': String(BIG) }, 'POST', DATA, {
      onBlocked: () => void otherTraffic().then(() => mirror.events.emit('release')),
    });
    assert.equal(sha(up.body), DATA_SHA, 'request body intact');
    // Download: the client reads nothing until the server can write no more.
    for (const path of [`/bytes/${BIG}?hold`, `/bytes/${BIG}?hold&chunked`]) {
      const full = new Promise<void>((resolve) => {
        const done = (): void => {
          mirror.events.off('blocked', done);
          mirror.events.off('sent', done);
          resolve();
        };
        mirror.events.on('blocked', done);
        mirror.events.on('sent', done);
      });
      const down = await exchange(port, path, host, 'GET', null, { holdResponse: full.then(otherTraffic) });
      assert.equal(down.status, 200);
      assert.equal(sha(down.body), DATA_SHA, `${path} intact`);
    }
  });

  it('serves pipelined requests in order when the next request arrives in pieces while one is in flight', async () => {
    const { socket, reader } = await rawClient(port);
    try {
      // A connection's first bytes are read before the proxy knows its protocol; start after that.
      socket.write('GET /bytes/10 HTTP/1.1\r\nHost: mirror:8080\r\n\r\n');
      assert.equal((await reader.next()).status, 200);
      const second = 'POST /echo HTTP/1.1\r\nHost: mirror:8080\r\nContent-Length: 11\r\n\r\nhello world';
      // The first request with the start of the second in one write; the rest of the
      // second and a third only once the first's answer came, so they are a later read.
      socket.write(`GET /bytes/300 HTTP/1.1\r\nHost: mirror:8080\r\n\r\n${second.slice(0, 30)}`);
      const r1 = await reader.next();
      assert.equal(r1.status, 200);
      assert.equal(sha(r1.body), sha(DATA.subarray(0, 300)));
      socket.write(`${second.slice(30)}GET /bytes/1000?chunked HTTP/1.1\r\nHost: mirror:8080\r\n\r\n`);
      const r2 = await reader.next();
      assert.equal(r2.status, 200);
      assert.equal(r2.body.toString(), 'hello world');
      const r3 = await reader.next();
      assert.equal(r3.status, 200);
      assert.equal(sha(r3.body), sha(DATA.subarray(0, 1000)));
    } finally {
      socket.destroy();
    }
  });

  it('puts together a response head that came in two reads', async () => {
    const { socket, reader } = await rawClient(port);
    try {
      // The server writes its head's first part once the body's first byte is in, the
      // rest once the second byte is: sent only after the first part is out.
      splitter.events.once('first-part', () => setImmediate(() => socket.write('b')));
      socket.write('POST /split HTTP/1.1\r\nHost: splitter:8080\r\nContent-Length: 2\r\n\r\na');
      const r = await reader.next();
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.body.toString(), 'split');
    } finally {
      socket.destroy();
    }
  });

  it('retries a request with the body it received, byte for byte', async () => {
    // A connection's first bytes are read before the proxy knows its protocol: the request
    // to retry is the second on its connection.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await exchange(port, '/bytes/10', { host: 'mirror:8080' }, 'GET', null, { agent })).status, 200);
      const body = DATA.subarray(0, 60_000); // under the 64 KiB kept for a retry
      const r = await exchange(port, '/echo', { host: 'mirror:8080', 'content-length': String(body.length), 'x-fail-first': 'retry-1' }, 'POST', body, { agent });
      assert.equal(r.status, 200, 'the second try answered');
      assert.equal(sha(r.body), sha(body), 'the replayed body is the one sent');
    } finally {
      agent.destroy();
    }
  });

  it('tunnels 16 MiB through CONNECT and back intact, with bytes right behind the CONNECT head and a client that reads late', async () => {
    const payload = Buffer.concat([DATA, DATA, DATA, DATA]); // more than the kernel buffers on the way back hold
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    let received = 0;
    const head = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.length;
        if (received >= head.length + payload.length) resolve();
      });
      socket.on('close', () => reject(new Error(`closed after ${received} bytes`)));
    });
    // Nothing is read until everything is sent: the echo waits in the proxy, behind
    // back-pressure, while other requests go through.
    socket.pause();
    try {
      socket.write(Buffer.concat([Buffer.from('CONNECT tcp-echo:9000 HTTP/1.1\r\nHost: tcp-echo:9000\r\n\r\n'), payload.subarray(0, 1000)]));
      for (let i = 1000; i < payload.length; i += 65_536) {
        if (!socket.write(payload.subarray(i, Math.min(i + 65_536, payload.length)))) await once(socket, 'drain');
      }
      await otherTraffic();
      socket.resume();
      await done;
      const all = Buffer.concat(chunks);
      assert.equal(all.subarray(0, head.length).toString(), head.toString());
      assert.equal(sha(all.subarray(head.length)), sha(payload));
    } finally {
      socket.destroy();
    }
  });
});
