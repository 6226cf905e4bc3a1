/**
 * Certificates rotated on disk, without a restart or an xDS push: a terminating chain's
 * certificate and key replaced by rename, and by a Kubernetes Secret volume's `..data`
 * symlink swap; a half-written rotation (new certificate, old key) that keeps the old
 * certificate serving until the key arrives; a cluster's CA bundle rotated after its
 * backend was re-issued by a new CA; and `/certs` showing it all. The test waits on the
 * proxy's rotation log lines, never on sleeps.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Logger } from '../../src/core/log.js';
import { freePort, send } from './http-backends.js';
import { CDS, downstreamTls, type FedGateway, hcm, LDS, listener, push, RDS, routeConfig, startFedGateway, staticCluster, upstreamTls } from './tls-fixture.js';
import { type PemPair, TestCa, writePair } from '../tls-certs.js';

type LogLine = Record<string, unknown> & { level: string; msg: string };

/** Log lines of the proxy, and a bounded wait for one that matches. */
class LogTap {
  readonly lines: LogLine[] = [];
  readonly #waiters = new Set<() => void>();
  readonly logger = new Logger({ level: 'info', format: 'json', sink: { write: (l: string) => this.#add(l) } });

  #add(line: string): void {
    this.lines.push(JSON.parse(line) as LogLine);
    for (const w of [...this.#waiters]) w();
  }

  /** The first line from index `from` on that matches; rejects after `timeoutMs`. */
  waitFor(from: number, match: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.slice(from).find(match);
        if (found === undefined) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

const rotated = (tls: string) => (l: LogLine): boolean => l.msg === 'certificate rotated' && l.tls === tls;
const refused = (tls: string) => (l: LogLine): boolean => l.level === 'warn' && l.tls === tls;

/** Writes `text` to `file` as an updater should: a new file renamed over the old one. */
function replaceFile(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toLowerCase();
}

/** The serial and SANs of the certificate the gateway presents for `servername`. */
async function presented(port: number, servername: string, ca: string): Promise<{ serial: string; sans: string }> {
  const s = tlsConnect({ host: '127.0.0.1', port, servername, ca });
  try {
    await once(s, 'secureConnect');
    const c = s.getPeerCertificate();
    return { serial: c.serialNumber.toLowerCase(), sans: c.subjectaltname ?? '' };
  } finally {
    s.destroy();
  }
}

/** One HTTP/1.1 request on an open TLS connection (kept open); resolves with the status line. */
function requestOn(s: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (!text.includes('"ok":true')) return; // the whole (tiny) response is in
      s.off('data', onData).off('error', reject);
      resolve(text.split('\r\n')[0] ?? '');
    };
    s.on('data', onData).on('error', reject);
    s.write(`GET ${path} HTTP/1.1\r\nhost: a.example.com\r\n\r\n`);
  });
}

interface CertDetails {
  path: string;
  serial_number: string;
  subject_alt_names: Record<string, string>[];
  days_until_expiration: number;
  valid_from: string;
  expiration_time: string;
}
interface CertsEntry {
  name: string;
  ca_cert: CertDetails[];
  cert_chain: CertDetails[];
}

function certs(adminPort: number): Promise<CertsEntry[]> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: adminPort, path: '/certs' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as { certificates: CertsEntry[] }).certificates));
    }).on('error', reject);
  });
}

/** An HTTPS backend whose certificate can be replaced (and its connections closed). */
async function reissuableBackend(pair: PemPair): Promise<{ port: number; reissue(p: PemPair): void; close(): Promise<void> }> {
  const server = createHttpsServer({ cert: pair.cert, key: pair.key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"backend":"reissued"}');
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    reissue: (p) => {
      server.setSecureContext({ cert: p.cert, key: p.key });
      server.closeAllConnections(); // pooled connections made with the old certificate go away
    },
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

describe('certificates rotated on disk', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-rot-'));
  const tap = new LogTap();
  let ca: TestCa;
  let gw: FedGateway;
  let plain: { port: number; close(): Promise<void> };
  let backend: Awaited<ReturnType<typeof reissuableBackend>>;
  let tlsPort = 0;
  let httpPort = 0;
  let a: { cert: string; key: string };
  let half: { cert: string; key: string };
  let halfPair: PemPair;
  const k8s = join(dir, 'k8s');
  const upCa = join(dir, 'up', 'ca.crt');
  let aPair: PemPair;

  before(async () => {
    ca = await TestCa.create();
    aPair = await ca.issue({ dns: ['a.example.com'] });
    a = writePair(dir, 'a', aPair);
    halfPair = await ca.issue({ dns: ['half.example.com'] });
    half = writePair(dir, 'half', halfPair);
    // A Kubernetes Secret volume: files are links through `..data` to a timestamped directory.
    mkdirSync(join(k8s, '..2026_01'), { recursive: true });
    writePair(join(k8s, '..2026_01'), 'tls', await ca.issue({ dns: ['k8s.example.com'] }));
    symlinkSync('..2026_01', join(k8s, '..data'));
    symlinkSync('..data/tls.crt', join(k8s, 'tls.crt'));
    symlinkSync('..data/tls.key', join(k8s, 'tls.key'));
    mkdirSync(join(dir, 'up'));
    writeFileSync(upCa, ca.cert);
    backend = await reissuableBackend(await ca.issue({ dns: ['backend.example.com'] }));
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    plain = {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
    };
    tlsPort = await freePort();
    httpPort = await freePort();
    gw = await startFedGateway(tap.logger);
    const upstream = upstreamTls({ sni: 'backend.example.com', ca: upCa, sans: ['backend.example.com'] });
    assert.equal((await push(gw.cp, CDS, 'c1', [staticCluster('plain', plain.port), staticCluster('up', backend.port, { tls: upstream })])).kind, 'ack');
    assert.equal((await push(gw.cp, LDS, 'l1', [
      listener('https', tlsPort, [
        { name: 'gw/a', serverNames: ['a.example.com'], tls: downstreamTls(a), filter: hcm('https.443') },
        { name: 'gw/k8s', serverNames: ['k8s.example.com'], tls: downstreamTls({ cert: join(k8s, 'tls.crt'), key: join(k8s, 'tls.key') }), filter: hcm('https.443') },
        { name: 'gw/half', serverNames: ['half.example.com'], tls: downstreamTls(half), filter: hcm('https.443') },
      ]),
      listener('http', httpPort, [{ name: 'gw/http', filter: hcm('http.80') }]),
    ])).kind, 'ack');
    await gw.cp.waitForRequest((r) => r.request.type_url === RDS && r.request.resource_names.includes('https.443') && r.request.resource_names.includes('http.80'));
    const routes = [{ prefix: '/up/', cluster: 'up' }, { prefix: '/', cluster: 'plain' }];
    assert.equal((await push(gw.cp, RDS, 'r1', [routeConfig('https.443', routes), routeConfig('http.80', routes)])).kind, 'ack');
    await gw.proxy.waitFor((s) => s.routes.has('https.443') && s.listeners.has('https') && s.clusters.has('up'));
  });

  after(async () => {
    await gw?.close();
    await plain?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a renamed-over certificate and key to new clients; a connection opened before keeps working', async () => {
    assert.equal((await presented(tlsPort, 'a.example.com', ca.cert)).serial, serialOf(aPair.cert));
    const early = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.example.com', ca: ca.cert });
    try {
      await once(early, 'secureConnect');
      assert.match(await requestOn(early, '/before'), /^HTTP\/1\.1 200/);
      const next = await ca.issue({ dns: ['a.example.com', 'a2.example.com'] });
      const from = tap.lines.length;
      replaceFile(a.cert, next.cert);
      replaceFile(a.key, next.key);
      const line = await tap.waitFor(from, rotated('listener https chain gw/a'));
      assert.deepEqual(line.files, [a.cert, a.key]);
      const now = await presented(tlsPort, 'a.example.com', ca.cert);
      assert.equal(now.serial, serialOf(next.cert));
      assert.match(now.sans, /DNS:a2\.example\.com/);
      assert.match(await requestOn(early, '/after'), /^HTTP\/1\.1 200/);
      assert.equal((await certs(gw.proxy.adminPort)).find((e) => e.name === 'listener https chain gw/a')?.cert_chain[0]?.serial_number, serialOf(next.cert));
    } finally {
      early.destroy();
    }
  });

  it('follows a Kubernetes Secret volume swapping its ..data symlink', async () => {
    const next = await ca.issue({ dns: ['k8s.example.com'], uri: ['spiffe://cluster.local/ns/istio-system/sa/gw'] });
    mkdirSync(join(k8s, '..2026_02'));
    writePair(join(k8s, '..2026_02'), 'tls', next);
    const from = tap.lines.length;
    symlinkSync('..2026_02', join(k8s, '..data_tmp'));
    renameSync(join(k8s, '..data_tmp'), join(k8s, '..data')); // what kubelet's atomic writer does
    await tap.waitFor(from, rotated('listener https chain gw/k8s'));
    const now = await presented(tlsPort, 'k8s.example.com', ca.cert);
    assert.equal(now.serial, serialOf(next.cert));
    assert.match(now.sans, /URI:spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/gw/);
  });

  it('keeps the old certificate while only the new certificate is written, and takes both once the key arrives', async () => {
    const next = await ca.issue({ dns: ['half.example.com'] });
    let from = tap.lines.length;
    replaceFile(half.cert, next.cert);
    const warning = await tap.waitFor(from, refused('listener https chain gw/half'));
    assert.match(String(warning.reason), /not usable/);
    assert.ok((warning.files as string[]).includes(half.cert));
    assert.doesNotMatch(JSON.stringify(tap.lines), /PRIVATE KEY/); // no key material in any log line
    assert.equal((await presented(tlsPort, 'half.example.com', ca.cert)).serial, serialOf(halfPair.cert));
    from = tap.lines.length;
    replaceFile(half.key, next.key);
    await tap.waitFor(from, rotated('listener https chain gw/half'));
    assert.equal((await presented(tlsPort, 'half.example.com', ca.cert)).serial, serialOf(next.cert));
  });

  it('origination: a rotated CA file lets the cluster reach a backend re-issued by a new CA, in new pools', async () => {
    const get = (): Promise<number> => send(httpPort, '/up/x', { host: 'shop.example.com' }, 'GET', undefined, false).then((r) => r.status);
    assert.equal(await get(), 200);
    const oldKey = gw.proxy.config.current.clusters.get('up')?.tls?.key ?? '';
    const newCa = await TestCa.create('Rotated CA');
    backend.reissue(await newCa.issue({ dns: ['backend.example.com'] }));
    assert.equal(await get(), 503); // the cluster still trusts only the old CA
    const from = tap.lines.length;
    replaceFile(upCa, newCa.cert);
    await tap.waitFor(from, rotated('cluster up'));
    assert.equal(await get(), 200);
    const newKey = gw.proxy.config.current.clusters.get('up')?.tls?.key ?? '';
    assert.notEqual(newKey, oldKey);
    assert.deepEqual([...gw.proxy.config.upstream.pools().keys()].filter((k) => k.endsWith(`|${oldKey}`)), []); // the old pool was closed and dropped
    const entry = (await certs(gw.proxy.adminPort)).find((e) => e.name === 'cluster up');
    assert.equal(entry?.ca_cert[0]?.serial_number, serialOf(newCa.cert));
    assert.equal(entry?.ca_cert[0]?.path, upCa);
  });

  it('/certs lists each chain and cluster with its files, SANs and expiry', async () => {
    const list = await certs(gw.proxy.adminPort);
    assert.deepEqual(list.map((e) => e.name).sort(), ['cluster up', 'listener https chain gw/a', 'listener https chain gw/half', 'listener https chain gw/k8s']);
    const chain = list.find((e) => e.name === 'listener https chain gw/a')?.cert_chain[0] as CertDetails;
    assert.equal(chain.path, a.cert);
    assert.deepEqual(chain.subject_alt_names, [{ dns: 'a.example.com' }, { dns: 'a2.example.com' }]);
    // Test certificates are valid from an hour ago for a day.
    const to = Date.parse(chain.expiration_time);
    assert.ok(to > Date.now() && to <= Date.now() + 24 * 3_600_000, chain.expiration_time);
    assert.ok(Date.parse(chain.valid_from) < Date.now());
    assert.equal(chain.days_until_expiration, 0);
    assert.deepEqual(list.find((e) => e.name === 'listener https chain gw/a')?.ca_cert, []);
    const k8sEntry = list.find((e) => e.name === 'listener https chain gw/k8s')?.cert_chain[0] as CertDetails;
    assert.deepEqual(k8sEntry.subject_alt_names, [{ dns: 'k8s.example.com' }, { uri: 'spiffe://cluster.local/ns/istio-system/sa/gw' }]);
  });
});
