/**
 * TLS from Istio YAML, end to end: a Gateway terminating HTTPS (HTTP/1.1 and HTTP/2 by
 * ALPN, gRPC over TLS with its status and trailers), two HTTPS servers on one port told
 * apart by SNI, a MUTUAL server, the HTTP→HTTPS redirect; and DestinationRules that make
 * the sidecar originate TLS (SIMPLE with CA and SAN checks, MUTUAL, HTTP/2 over TLS, and
 * Istio's egress pattern: HTTP on port 80 sent to the same external host's 443 over TLS).
 * Control plane, gateway, sidecar and backends on 127.0.0.1; certificates made per run.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest, createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { type AddressInfo, connect as netConnect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { TestCa, writePair } from '../tls-certs.js';
import { Echo, type EchoClient, type EchoReply, startBackend } from './echo.js';
import { startFaultyGrpc } from './faulty-h2-backends.js';
import { freePort, send, startHttpBackend } from './http-backends.js';
import { Mesh, type ServiceSpec, servicesYaml } from './mesh.js';

const log = new Logger({ level: 'warn' });
const SHOP = 'shop.example.com';
const ADMIN = 'admin.example.com';
const EXTERNAL = 'api.external.example';

/** What an HTTPS backend saw of a request: the server name the proxy sent, the client certificate's name, the protocol. */
interface TlsSeen {
  readonly backend: string;
  readonly sni: string | false;
  readonly clientCert: string | null;
  readonly alpn: string | false | null;
  readonly path: string;
}

interface HttpsBackend {
  readonly port: number;
  readonly server: HttpsServer;
}

/** An HTTPS/1.1 server with `pair`; it asks for (and checks against `ca`) a client certificate, and answers what it saw. */
async function startHttpsBackend(name: string, pair: { cert: string; key: string }, ca: string): Promise<HttpsBackend> {
  const server = createHttpsServer({ ...pair, ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate() as PeerCertificate | Record<string, never>;
    const seen: TlsSeen = {
      backend: name, sni: (socket as TLSSocket & { servername: string | false }).servername, alpn: socket.alpnProtocol,
      clientCert: socket.authorized && 'subject' in peer ? String(peer.subject.CN) : null, path: req.url ?? '',
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server };
}

interface HttpsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The DNS names of the certificate the server presented. */
  readonly serverCert: string;
}

/** One HTTPS/1.1 request to 127.0.0.1:`port` for `host` (SNI and Host), trusting `ca`, with an optional client certificate. */
function httpsGet(port: number, host: string, path: string, ca: string, client?: { cert: string; key: string }): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: host, headers: { host }, ca, ...client, agent: false, timeout: 10_000 }, (res) => {
      const serverCert = (res.socket as TLSSocket).getPeerCertificate().subjectaltname ?? '';
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), serverCert }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function yaml(p: {
  httpsPort: number; mtlsPort: number; httpPort: number; web: number; grpcOk: number; grpcBad: number;
  secure: number; secureGrpc: number; external: number; files: Record<string, { cert: string; key: string }>; caFile: string;
}): string {
  const f = p.files;
  const http = (name: string, backend: number, tls?: string): ServiceSpec => ({ name, portName: 'http', port: 8080, endpoints: [backend], ...(tls === undefined ? {} : { policy: `{tls: ${tls}}` }) });
  const services = servicesYaml([
    http('web', p.web),
    { name: 'grpc-ok', portName: 'grpc', port: 9090, endpoints: [p.grpcOk] },
    { name: 'grpc-bad', portName: 'grpc', port: 9090, endpoints: [p.grpcBad] },
    http('secure', p.secure, `{mode: SIMPLE, caCertificates: ${p.caFile}, subjectAltNames: [secure.default.svc.cluster.local]}`),
    http('secure-mutual', p.secure, `{mode: MUTUAL, caCertificates: ${p.caFile}, clientCertificate: ${f.client?.cert}, privateKey: ${f.client?.key}}`),
    http('secure-wrong-san', p.secure, `{mode: SIMPLE, caCertificates: ${p.caFile}, subjectAltNames: [someone-else.example.com]}`),
    http('secure-untrusted', p.secure, `{mode: SIMPLE, caCertificates: ${f.otherCa?.cert}}`),
    http('secure-insecure', p.secure, '{mode: SIMPLE, insecureSkipVerify: true}'),
    { name: 'secure-grpc', portName: 'grpc', port: 9443, endpoints: [p.secureGrpc], policy: `{tls: {mode: SIMPLE, caCertificates: ${p.caFile}, sni: grpc.secure.example}}` },
  ]);
  return `${services}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api}
spec:
  hosts: [${EXTERNAL}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${p.web}, https: ${p.external}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: external-api}
spec:
  hosts: [${EXTERNAL}]
  http:
  - match: [{port: 80}]
    route: [{destination: {host: ${EXTERNAL}, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: external-api}
spec:
  host: ${EXTERNAL}
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: ${p.caFile}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${p.httpsPort}, name: https-shop, protocol: HTTPS}
    hosts: [${SHOP}]
    tls: {mode: SIMPLE, serverCertificate: ${f.shop?.cert}, privateKey: ${f.shop?.key}}
  - port: {number: ${p.httpsPort}, name: https-admin, protocol: HTTPS}
    hosts: [${ADMIN}]
    tls: {mode: SIMPLE, serverCertificate: ${f.admin?.cert}, privateKey: ${f.admin?.key}}
  - port: {number: ${p.mtlsPort}, name: https-mutual, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: ${f.shop?.cert}, privateKey: ${f.shop?.key}, caCertificates: ${p.caFile}}
  - port: {number: ${p.httpPort}, name: http, protocol: HTTP}
    hosts: [${SHOP}]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [${SHOP}, ${ADMIN}]
  gateways: [edge]
  http:
  - match: [{uri: {prefix: /trellis.test.Echo/}, headers: {x-variant: {exact: bad}}}]
    route: [{destination: {host: grpc-bad, port: {number: 9090}}}]
  - match: [{uri: {prefix: /trellis.test.Echo/}}]
    route: [{destination: {host: grpc-ok, port: {number: 9090}}}]
  - route: [{destination: {host: web, port: {number: 8080}}}]
`;
}

/** The first bytes a TLS client sends (its ClientHello record), for `servername`, captured by a plain TCP server. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (b: Buffer) => {
    resolve(b);
    s.destroy();
  })));
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ALPNProtocols: ['h2', 'http/1.1'] });
  client.on('error', () => undefined);
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

/** Sends `bytes` to 127.0.0.1:`port`, reads whatever comes back, and resolves when the connection closes (or after 2 s). */
function throwAt(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.on('close', () => resolve());
    s.setTimeout(2_000, () => s.destroy());
    s.end(bytes);
  });
}

function grpcCall(client: EchoClient, headers: Record<string, string> = {}): Promise<{ err: grpc.ServiceError | null; reply: EchoReply | undefined }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) => client.Call({ message: 'over tls' }, md, { deadline: Date.now() + 10_000 }, (err, reply) => resolve({ err, reply })));
}

describe('TLS from Istio YAML: gateway termination and sidecar origination', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-e2e-'));
  const closers: (() => Promise<void> | void)[] = [];
  let ca: TestCa;
  let mesh: Mesh;
  let gateway: Proxy;
  let ports: { httpsPort: number; mtlsPort: number; httpPort: number };
  let clientPair: { cert: string; key: string };
  let strangerPair: { cert: string; key: string };

  before(async () => {
    ca = await TestCa.create();
    const otherCa = await TestCa.create('Another CA');
    const caFile = join(dir, 'ca.crt');
    writePair(dir, 'ca', { cert: ca.cert, key: '' });
    clientPair = await ca.issue({ dns: ['client.example.com'], client: true });
    strangerPair = await otherCa.issue({ dns: ['stranger.example.com'], client: true });
    const files = {
      shop: writePair(dir, 'shop', await ca.issue({ dns: [SHOP] })),
      admin: writePair(dir, 'admin', await ca.issue({ dns: [ADMIN] })),
      client: writePair(dir, 'client', clientPair),
      otherCa: writePair(dir, 'other-ca', { cert: otherCa.cert, key: '' }),
    };
    const web = await startHttpBackend('web');
    const grpcOk = await startBackend('grpc-ok');
    const grpcBad = await startFaultyGrpc('grpc-bad', 'unavailable');
    const secure = await startHttpsBackend('secure', await ca.issue({ dns: ['secure.default.svc.cluster.local'] }), ca.cert);
    const external = await startHttpsBackend('external', await ca.issue({ dns: [EXTERNAL] }), ca.cert);
    const grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, { Call: (call: grpc.ServerUnaryCall<{ message: string }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { backend: 'secure-grpc', message: call.request.message }) });
    const grpcPair = await ca.issue({ dns: ['grpc.secure.example'] });
    const secureGrpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(grpcPair.cert), private_key: Buffer.from(grpcPair.key) }]), (err, port) => (err === null ? resolve(port) : reject(err))));
    closers.push(() => web.close(), () => grpcOk.close(), () => grpcBad.close(), () => void secure.server.closeAllConnections(), () => void secure.server.close(), () => void external.server.closeAllConnections(), () => void external.server.close(), () => void grpcServer.forceShutdown());
    ports = { httpsPort: await freePort(), mtlsPort: await freePort(), httpPort: await freePort() };
    mesh = await Mesh.start({
      yaml: yaml({ ...ports, web: web.port, grpcOk: grpcOk.port, grpcBad: grpcBad.port, secure: secure.port, secureGrpc: secureGrpcPort, external: external.port, files, caFile }),
    });
    gateway = new Proxy({ xds: `127.0.0.1:${mesh.cp.xdsPort}`, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, outboundPort: 0, adminPort: 0, statsPort: 0, log, type: 'router', id: 'edge', serviceAccount: 'edge', labels: { istio: 'ingressgateway' } });
    await gateway.start();
    await gateway.waitFor((s) => [ports.httpsPort, ports.mtlsPort, ports.httpPort].every((p) => s.listeners.has(`0.0.0.0_${p}`)) && (s.clusters.get('outbound|9090||grpc-ok.default.svc.cluster.local')?.endpoints.length ?? 0) > 0);
    await mesh.waitForEndpoints('secure', (e) => e.length > 0);
  });

  after(async () => {
    await gateway?.close();
    await mesh?.close();
    for (const c of closers) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it('terminates HTTPS/1.1 at the gateway with the server\'s certificate and routes it, marked x-forwarded-proto https', async () => {
    const r = await httpsGet(ports.httpsPort, SHOP, '/products', ca.cert);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.serverCert, `DNS:${SHOP}`);
    const seen = JSON.parse(r.body) as { backend: string; path: string; headers: Record<string, string> };
    assert.equal(seen.backend, 'web');
    assert.equal(seen.path, '/products');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('picks the certificate by SNI when two HTTPS servers share a port', async () => {
    const r = await httpsGet(ports.httpsPort, ADMIN, '/', ca.cert);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.serverCert, `DNS:${ADMIN}`);
  });

  it('serves HTTP/2 over TLS (ALPN h2) at the gateway, to an HTTP/1.1 backend', async () => {
    const session = h2connect(`https://127.0.0.1:${ports.httpsPort}`, { ca: ca.cert, servername: SHOP });
    try {
      await once(session, 'connect');
      assert.equal((session.socket as TLSSocket).alpnProtocol, 'h2');
      const stream = session.request({ [h2.HTTP2_HEADER_PATH]: '/over-h2', [h2.HTTP2_HEADER_AUTHORITY]: SHOP });
      const [headers] = (await once(stream, 'response')) as [Record<string, string>];
      let body = '';
      stream.setEncoding('utf8');
      for await (const chunk of stream) body += chunk;
      assert.equal(headers[h2.HTTP2_HEADER_STATUS], 200 as unknown as string);
      assert.equal((JSON.parse(body) as { path: string }).path, '/over-h2');
    } finally {
      session.close();
    }
  });

  it('carries gRPC over TLS through the gateway, with the backend\'s status and message on failure', async () => {
    const client = new Echo(`127.0.0.1:${ports.httpsPort}`, grpc.credentials.createSsl(Buffer.from(ca.cert)), { 'grpc.ssl_target_name_override': SHOP, 'grpc.default_authority': SHOP }) as unknown as EchoClient;
    try {
      const ok = await grpcCall(client);
      assert.equal(ok.err, null);
      assert.deepEqual(ok.reply, { backend: 'grpc-ok', message: 'over tls' });
      const bad = await grpcCall(client, { 'x-variant': 'bad' });
      assert.equal(bad.err?.code, grpc.status.UNAVAILABLE);
      assert.equal(bad.err?.details, 'grpc-bad is unavailable');
    } finally {
      client.close();
    }
  });

  it('a MUTUAL server accepts a client certificate from its CA and refuses none or another CA\'s', async () => {
    const ok = await httpsGet(ports.mtlsPort, SHOP, '/mutual', ca.cert, clientPair);
    assert.equal(ok.status, 200, ok.body);
    await assert.rejects(httpsGet(ports.mtlsPort, SHOP, '/mutual', ca.cert));
    await assert.rejects(httpsGet(ports.mtlsPort, SHOP, '/mutual', ca.cert, strangerPair));
  });

  it('redirects plain HTTP to HTTPS with 301 on a server with httpsRedirect', async () => {
    const r = await send(ports.httpPort, '/cart?item=3', { host: `${SHOP}:${ports.httpPort}` }, 'GET', undefined, false);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://${SHOP}/cart?item=3`);
  });

  it('survives random bytes and mangled ClientHellos at its TLS listeners, and keeps serving', async () => {
    let seed = 7;
    const random = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 4294967296;
    };
    const hello = await clientHello(SHOP);
    const inputs = (): Buffer => {
      const kind = random();
      if (kind < 0.3) return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 600) }, () => Math.floor(random() * 256)));
      const b = Buffer.from(hello);
      if (kind < 0.6) return b.subarray(0, 1 + Math.floor(random() * b.length)); // truncated hello
      // The record header kept (so the listener takes it for TLS), bytes of the handshake flipped.
      for (let i = 0, n = 1 + Math.floor(random() * 12); i < n; i++) b[5 + Math.floor(random() * (b.length - 5))] = Math.floor(random() * 256);
      return b;
    };
    for (let round = 0; round < 60; round++) await Promise.all([ports.httpsPort, ports.mtlsPort, ports.httpsPort, ports.mtlsPort].map((p) => throwAt(p, inputs())));
    const after = await httpsGet(ports.httpsPort, SHOP, '/after-fuzz', ca.cert);
    assert.equal(after.status, 200, after.body);
    assert.equal((await httpsGet(ports.mtlsPort, SHOP, '/after-fuzz', ca.cert, clientPair)).status, 200);
  });

  it('originates TLS from the sidecar: SNI from the service name, CA and SAN verified', async () => {
    const r = await send(mesh.port, '/secure', { host: 'secure:8080' });
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as TlsSeen;
    assert.deepEqual({ backend: seen.backend, sni: seen.sni, clientCert: seen.clientCert, path: seen.path }, { backend: 'secure', sni: 'secure.default.svc.cluster.local', clientCert: null, path: '/secure' });
  });

  it('presents the client certificate for MUTUAL origination', async () => {
    const r = await send(mesh.port, '/', { host: 'secure-mutual:8080' });
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as TlsSeen).clientCert, 'client.example.com');
  });

  it('answers 503 UF with the TLS reason when the upstream certificate fails verification; insecureSkipVerify accepts it', async () => {
    for (const host of ['secure-wrong-san', 'secure-untrusted']) {
      const r = await send(mesh.port, '/', { host: `${host}:8080` });
      assert.equal(r.status, 503, `${host}: ${r.body}`);
      assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure, transport failure reason: TLS_error:/, host);
    }
    const ok = await send(mesh.port, '/', { host: 'secure-insecure:8080' });
    assert.equal(ok.status, 200, ok.body);
  });

  it('originates HTTP/2 over TLS for a gRPC service, with the DestinationRule\'s SNI', async () => {
    const client = new Echo(`127.0.0.1:${mesh.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'secure-grpc:9443' }) as unknown as EchoClient;
    try {
      const r = await grpcCall(client);
      assert.equal(r.err, null);
      assert.deepEqual(r.reply, { backend: 'secure-grpc', message: 'over tls' });
    } finally {
      client.close();
    }
  });

  it('sends HTTP for port 80 of an external host to its port 443 over TLS (Istio\'s egress TLS origination)', async () => {
    const r = await send(mesh.port, `http://${EXTERNAL}/books?q=1`, { host: EXTERNAL });
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as TlsSeen;
    assert.deepEqual({ backend: seen.backend, sni: seen.sni, alpn: seen.alpn, path: seen.path }, { backend: 'external', sni: EXTERNAL, alpn: 'http/1.1', path: '/books?q=1' });
  });
});
