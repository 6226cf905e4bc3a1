/**
 * TLS termination at a gateway proxy fed hand-written xDS: HTTP/1.1 and HTTP/2 (ALPN) over
 * TLS through terminating filter chains, SNI choosing between chains with different
 * certificates, MUTUAL and its client certificates, a bad certificate file NACKed while
 * the previous listener keeps serving, the `require_tls` redirect, and draining a TLS
 * connection. Real TLS clients on 127.0.0.1; certificates made at run time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { freePort, send } from './http-backends.js';
import { CDS, downstreamTls, type FedGateway, hcm, LDS, listener, push, RDS, routeConfig, startFedGateway, staticCluster, tcpProxy } from './tls-fixture.js';
import { type PemPair, TestCa, writePair } from '../tls-certs.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A plaintext HTTP/1.1 backend echoing what it got; `/slow` answers once `release()` is called. */
async function echoBackend(): Promise<{ port: number; release(): void; slowArrived: Promise<void>; close(): Promise<void> }> {
  let release: () => void = () => undefined;
  let arrived: () => void = () => undefined;
  const slowArrived = new Promise<void>((r) => (arrived = r));
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, headers: req.headers }));
    };
    if (req.url === '/slow') {
      release = answer;
      arrived();
    } else {
      answer();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    release: () => release(),
    slowArrived,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

/** An h2c backend answering like a gRPC server: 200, then the message, then `grpc-status` trailers. */
async function grpcLikeBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createH2Server();
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
    stream.end(Buffer.from(`reply to ${String(headers[':path'])}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function httpsGet(port: number, servername: string, path: string, o: { ca: string; cert?: PemPair; headers?: Record<string, string> }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername, ca: o.ca, agent: false, headers: { host: servername, ...o.headers }, ...(o.cert === undefined ? {} : { cert: o.cert.cert, key: o.cert.key }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

/** The SAN text of the certificate a TLS server presents for `servername`. */
async function presentedSans(port: number, servername: string, ca: string): Promise<string | undefined> {
  const s = tlsConnect({ host: '127.0.0.1', port, servername, ca });
  try {
    await once(s, 'secureConnect');
    return s.getPeerCertificate().subjectaltname;
  } finally {
    s.destroy();
  }
}

describe('TLS termination at the gateway', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-term-'));
  let ca: TestCa;
  let clientPair: PemPair;
  let strangerPair: PemPair;
  let gw: FedGateway;
  let backend: Awaited<ReturnType<typeof echoBackend>>;
  let grpc: Awaited<ReturnType<typeof grpcLikeBackend>>;
  let tlsPort = 0;
  let plainPort = 0;
  let caFile = '';
  let listenerV1: object;

  before(async () => {
    ca = await TestCa.create();
    const a = writePair(dir, 'a', await ca.issue({ dns: ['a.example.com'] }));
    const b = writePair(dir, 'b', await ca.issue({ dns: ['b.example.com'] }));
    const m = writePair(dir, 'mtls', await ca.issue({ dns: ['mtls.example.com'] }));
    const t = writePair(dir, 'tcp', await ca.issue({ dns: ['tcp.example.com'] }));
    clientPair = await ca.issue({ dns: ['client.example.com'], uri: ['spiffe://cluster.local/ns/default/sa/client'], client: true });
    strangerPair = await (await TestCa.create('Another CA')).issue({ dns: ['client.example.com'], client: true });
    caFile = join(dir, 'ca.crt');
    writePair(dir, 'ca', { cert: ca.cert, key: '' });
    backend = await echoBackend();
    grpc = await grpcLikeBackend();
    tlsPort = await freePort();
    plainPort = await freePort();
    gw = await startFedGateway();
    assert.equal((await push(gw.cp, CDS, 'c1', [staticCluster('plain', backend.port), staticCluster('grpc', grpc.port, { http2: true })])).kind, 'ack');
    listenerV1 = listener('https', tlsPort, [
      { name: 'gw/a', serverNames: ['a.example.com'], tls: downstreamTls(a), filter: hcm('https.443') },
      { name: 'gw/b', serverNames: ['b.example.com'], tls: downstreamTls(b), filter: hcm('https.443') },
      { name: 'gw/mtls', serverNames: ['mtls.example.com'], tls: downstreamTls(m, { ca: caFile, require: true }), filter: hcm('https.443') },
      { name: 'gw/tcp', serverNames: ['tcp.example.com'], tls: downstreamTls(t, { alpn: [] }), filter: tcpProxy('plain') },
    ]);
    assert.equal((await push(gw.cp, LDS, 'l1', [listenerV1, listener('http', plainPort, [{ name: 'gw/http', filter: hcm('http.80') }])])).kind, 'ack');
    await gw.cp.waitForRequest((r) => r.request.type_url === RDS && r.request.resource_names.includes('https.443') && r.request.resource_names.includes('http.80'));
    const routes = [{ prefix: '/grpc', cluster: 'grpc' }, { prefix: '/', cluster: 'plain' }];
    assert.equal((await push(gw.cp, RDS, 'r1', [routeConfig('https.443', routes), routeConfig('http.80', routes, true)])).kind, 'ack');
    await gw.proxy.waitFor((s) => s.routes.has('https.443') && s.routes.has('http.80') && s.listeners.has('https') && s.listeners.has('http'));
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
    await grpc?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTP/1.1 over TLS, with x-forwarded-proto https', async () => {
    const r = await httpsGet(tlsPort, 'a.example.com', '/hello', { ca: ca.cert });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/hello');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('serves HTTP/2 over TLS (ALPN h2), gRPC trailers from an h2c backend included', async () => {
    const session = h2connect(`https://a.example.com:${tlsPort}`, { createConnection: () => tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.example.com', ca: ca.cert, ALPNProtocols: ['h2'] }) });
    try {
      session.on('error', () => undefined);
      await once(session, 'connect');
      assert.equal((session.socket as TLSSocket).alpnProtocol, 'h2');
      const stream = session.request({ ':method': 'POST', ':path': '/grpc/echo.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end(Buffer.alloc(5));
      const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      const [trailers] = (await once(stream, 'trailers')) as [Record<string, string>];
      assert.equal(headers[':status'], 200);
      assert.equal(body, 'reply to /grpc/echo.Echo/Say');
      assert.equal(trailers['grpc-status'], '0');
      const plain = session.request({ ':path': '/h2-plain' });
      plain.end();
      let text = '';
      plain.setEncoding('utf8');
      plain.on('data', (c: string) => (text += c));
      await once(plain, 'end');
      assert.equal((JSON.parse(text) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
    } finally {
      session.close();
    }
  });

  it('chooses the chain, and so the certificate, by SNI', async () => {
    assert.match((await presentedSans(tlsPort, 'a.example.com', ca.cert)) ?? '', /DNS:a\.example\.com/);
    assert.match((await presentedSans(tlsPort, 'b.example.com', ca.cert)) ?? '', /DNS:b\.example\.com/);
  });

  it('terminates TLS before a tcp_proxy chain', async () => {
    const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'tcp.example.com', ca: ca.cert });
    await once(s, 'secureConnect');
    s.write('GET /over-tcp HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    await once(s, 'close');
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /"path":"\/over-tcp"/);
  });

  it('MUTUAL: refuses a client without a certificate, or with one from another CA; serves one from the CA', async () => {
    await assert.rejects(httpsGet(tlsPort, 'mtls.example.com', '/m', { ca: ca.cert }));
    await assert.rejects(httpsGet(tlsPort, 'mtls.example.com', '/m', { ca: ca.cert, cert: strangerPair }));
    const ok = await httpsGet(tlsPort, 'mtls.example.com', '/m', { ca: ca.cert, cert: clientPair });
    assert.equal(ok.status, 200);
  });

  it('NACKs a listener whose certificate file is missing, naming the field and file; the previous one keeps serving', async () => {
    const missing = join(dir, 'missing.crt');
    const bad = listener('https', tlsPort, [{ name: 'gw/a', serverNames: ['a.example.com'], tls: downstreamTls({ cert: missing, key: join(dir, 'a.key') }), filter: hcm('https.443') }]);
    const r = await push(gw.cp, LDS, 'l2', [bad, listener('http', plainPort, [{ name: 'gw/http', filter: hcm('http.80') }])]);
    assert.equal(r.kind, 'nack');
    assert.match(r.message, /tls_certificates\[0\]\.certificate_chain: cannot read file ".*missing\.crt" \(ENOENT\)/);
    const notPem = listener('https', tlsPort, [{ name: 'gw/a', serverNames: ['a.example.com'], tls: downstreamTls({ cert: join(dir, 'a.crt'), key: join(dir, 'a.crt') }), filter: hcm('https.443') }]);
    const r2 = await push(gw.cp, LDS, 'l3', [notPem]);
    assert.equal(r2.kind, 'nack');
    assert.match(r2.message, /private_key: file ".*a\.crt" is not a valid PEM private key/);
    assert.doesNotMatch(r2.message, /BEGIN/);
    const still = await httpsGet(tlsPort, 'a.example.com', '/still', { ca: ca.cert });
    assert.equal(still.status, 200);
  });

  it('redirects plaintext requests to a require_tls virtual host (HTTP/1.1 and h2c), before routing', async () => {
    const r = await send(plainPort, '/shop/cart?item=1', { host: 'shop.example.com:8080' }, 'GET', undefined, false);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://shop.example.com/shop/cart?item=1');
    const session = h2connect(`http://127.0.0.1:${plainPort}`);
    try {
      const stream = session.request({ ':path': '/x', ':authority': 'shop.example.com', ':scheme': 'https' });
      stream.end();
      const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
      assert.equal(headers[':status'], 301);
      assert.equal(headers.location, 'https://shop.example.com/x');
      stream.resume();
    } finally {
      session.close();
    }
  });

  it('drains a TLS HTTP/1.1 connection: the in-flight response says connection: close', async () => {
    const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.example.com', ca: ca.cert });
    await once(s, 'secureConnect');
    s.write('GET /slow HTTP/1.1\r\nhost: a.example.com\r\n\r\n');
    await backend.slowArrived;
    const drained = gw.proxy.drain(5_000);
    backend.release();
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    await once(s, 'end');
    await drained;
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /\r\nconnection: close\r\n/i);
    s.destroy();
  });
});
