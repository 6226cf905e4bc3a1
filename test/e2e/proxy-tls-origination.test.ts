/**
 * TLS origination from a gateway proxy fed hand-written xDS: clusters with an
 * UpstreamTlsContext reach HTTPS/1.1, HTTP/2-over-TLS and TLS TCP backends, verifying
 * against the CA and the SAN matchers as Envoy does (a SAN mismatch is a 503 UF with the
 * TLS reason), not verifying without a validation context, presenting a client
 * certificate for MUTUAL, and never sharing connections between clusters with different
 * TLS settings for one endpoint. Everything on 127.0.0.1; certificates made at run time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, send } from './http-backends.js';
import { CDS, type FedGateway, hcm, LDS, listener, push, RDS, routeConfig, startFedGateway, startH2TlsBackend, startHttpsBackend, startTlsEcho, staticCluster, tcpProxy, type TlsBackend, upstreamTls } from './tls-fixture.js';
import { type PemPair, TestCa, writePair } from '../tls-certs.js';

describe('TLS origination from the proxy', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-orig-'));
  let gw: FedGateway;
  const backends: TlsBackend[] = [];
  let httpPort = 0;
  let tcpPort = 0;
  let clientPair: PemPair;

  before(async () => {
    const ca = await TestCa.create();
    const other = await TestCa.create('Untrusted CA');
    writePair(dir, 'ca', { cert: ca.cert, key: '' });
    const caFile = join(dir, 'ca.crt');
    const serverPair = await ca.issue({ dns: ['backend.example.com'], uri: ['spiffe://cluster.local/ns/default/sa/backend'] });
    clientPair = await ca.issue({ dns: ['gateway.example.com'], uri: ['spiffe://cluster.local/ns/default/sa/gw'], client: true });
    const client = writePair(dir, 'client', clientPair);
    const https = await startHttpsBackend('https', serverPair);
    const mutual = await startHttpsBackend('mutual', serverPair, ca.cert);
    const untrusted = await startHttpsBackend('untrusted', await other.issue({ dns: ['backend.example.com'] }));
    const h2 = await startH2TlsBackend('h2', serverPair);
    const echo = await startTlsEcho('echo', serverPair);
    backends.push(https, mutual, untrusted, h2, echo);
    httpPort = await freePort();
    tcpPort = await freePort();
    gw = await startFedGateway();
    const verified = { sni: 'backend.example.com', ca: caFile, sans: ['backend.example.com'] };
    const clusters = [
      staticCluster('simple', https.port, { tls: upstreamTls({ ...verified, alpn: ['http/1.1'] }) }),
      staticCluster('uri-san', https.port, { tls: upstreamTls({ ca: caFile, sans: ['spiffe://cluster.local/ns/default/sa/backend'] }) }),
      staticCluster('mismatch', https.port, { tls: upstreamTls({ ...verified, sans: ['other.example.com'] }) }),
      staticCluster('no-san-check', https.port, { tls: upstreamTls({ sni: 'wrong.example.com', ca: caFile }) }),
      staticCluster('untrusted', untrusted.port, { tls: upstreamTls(verified) }),
      staticCluster('insecure', untrusted.port, { tls: upstreamTls({ sni: 'backend.example.com' }) }),
      staticCluster('mutual', mutual.port, { tls: upstreamTls({ ...verified, client }) }),
      staticCluster('mutual-no-cert', mutual.port, { tls: upstreamTls(verified) }),
      staticCluster('mutual-inline', mutual.port, { tls: upstreamTls({ ...verified, clientInline: clientPair }) }),
      staticCluster('retried', [untrusted.port, https.port], { tls: upstreamTls(verified) }),
      staticCluster('h2', h2.port, { http2: true, tls: upstreamTls({ ...verified, alpn: ['h2'] }) }),
      staticCluster('echo', echo.port, { tls: upstreamTls(verified) }),
    ];
    assert.equal((await push(gw.cp, CDS, 'c1', clusters)).kind, 'ack');
    const names = ['simple', 'uri-san', 'mismatch', 'no-san-check', 'untrusted', 'insecure', 'mutual', 'mutual-no-cert', 'mutual-inline', 'h2'];
    assert.equal((await push(gw.cp, LDS, 'l1', [
      listener('http', httpPort, [{ name: 'gw/http', filter: hcm('http.80') }]),
      listener('tcp', tcpPort, [{ name: 'gw/tcp', filter: tcpProxy('echo') }]),
    ])).kind, 'ack');
    await gw.cp.waitForRequest((r) => r.request.type_url === RDS && r.request.resource_names.includes('http.80'));
    const routes = [...names.map((n) => ({ prefix: `/${n}/`, cluster: n })), { prefix: '/retried/', cluster: 'retried', retryOn: 'connect-failure' }];
    assert.equal((await push(gw.cp, RDS, 'r1', [routeConfig('http.80', routes)])).kind, 'ack');
    await gw.proxy.waitFor((s) => s.routes.has('http.80') && s.listeners.has('tcp') && s.clusters.size === clusters.length);
  });

  after(async () => {
    await gw?.close();
    for (const b of backends) await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string) => send(httpPort, path, { host: 'shop.example.com' }, 'GET', undefined, false);

  it('reaches an HTTPS/1.1 backend verified by CA and DNS SAN, sending the SNI', async () => {
    const r = await get('/simple/a');
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { backend: string; sni: string; path: string };
    assert.equal(seen.backend, 'https');
    assert.equal(seen.sni, 'backend.example.com');
    assert.equal(seen.path, '/simple/a');
  });

  it('matches URI SANs too, and checks no hostname without SAN matchers (Envoy)', async () => {
    assert.equal((await get('/uri-san/x')).status, 200);
    assert.equal((await get('/no-san-check/x')).status, 200);
  });

  it('answers 503 UF with the TLS reason when no SAN matches, and never reuses another cluster\'s verified connection', async () => {
    assert.equal((await get('/simple/warm')).status, 200); // a verified connection to the same endpoint is pooled
    const r = await get('/mismatch/x');
    assert.equal(r.status, 503);
    assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure, transport failure reason: TLS_error:/);
    assert.match(r.body, /other\.example\.com/);
    assert.match(gw.proxy.metrics.render(), /response_flags="UF"/);
  });

  it('refuses a backend whose certificate is not from the trusted CA; accepts it without a validation context', async () => {
    const r = await get('/untrusted/x');
    assert.equal(r.status, 503);
    assert.match(r.body, /transport failure reason: TLS_error:UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    const ok = await get('/insecure/x');
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as { backend: string }).backend, 'untrusted');
  });

  it('retries a failed handshake on connect-failure, on the other endpoint', async () => {
    // Round robin over [untrusted, trusted]: every other first try fails its handshake and
    // would be a 503 UF without the retry.
    for (let i = 0; i < 4; i++) {
      const r = await get(`/retried/${i}`);
      assert.equal(r.status, 200, r.body);
      assert.equal((JSON.parse(r.body) as { backend: string }).backend, 'https');
    }
  });

  it('MUTUAL: presents the client certificate the backend requires', async () => {
    const r = await get('/mutual/x');
    assert.equal(r.status, 200, r.body);
    assert.match((JSON.parse(r.body) as { clientCert: string }).clientCert, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/gw/);
    const refused = await get('/mutual-no-cert/x');
    assert.equal(refused.status, 503);
  });

  it('takes inline certificates too, and /config_dump shows the contexts without the private key', async () => {
    assert.equal((await get('/mutual-inline/x')).status, 200);
    const dump = await new Promise<string>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port: gw.proxy.adminPort, path: '/config_dump' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    assert.match(dump, /UpstreamTlsContext/);
    assert.match(dump, /backend\.example\.com/);
    assert.match(dump, /\[redacted\]/);
    assert.doesNotMatch(dump, /PRIVATE KEY/);
    assert.equal(dump.includes(clientPair.key.split('\n')[1] as string), false);
  });

  it('reaches an HTTP/2-over-TLS backend with ALPN h2, trailers and all', async () => {
    const r = await get('/h2/x');
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { backend: string; alpn: string; path: string };
    assert.equal(seen.backend, 'h2');
    assert.equal(seen.alpn, 'h2');
  });

  it('originates TLS for requests that came over HTTP/2 too (to HTTP/1.1 and HTTP/2 clusters), with the same 503 UF', async () => {
    const session = h2connect(`http://127.0.0.1:${httpPort}`);
    try {
      const ask = async (path: string): Promise<{ status: number; body: string }> => {
        const stream = session.request({ ':path': path, ':authority': 'shop.example.com' });
        stream.end();
        const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
        let body = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (body += c));
        await once(stream, 'end');
        return { status: Number(headers[':status']), body };
      };
      assert.equal((await ask('/simple/h2c')).status, 200);
      const h2 = await ask('/h2/h2c');
      assert.equal(h2.status, 200);
      assert.equal((JSON.parse(h2.body) as { alpn: string }).alpn, 'h2');
      const bad = await ask('/mismatch/h2c');
      assert.equal(bad.status, 503);
      assert.match(bad.body, /transport failure reason: TLS_error:ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      session.close();
    }
  });

  it('proxies TCP to a TLS backend', async () => {
    const s = connect(tcpPort, '127.0.0.1');
    s.setEncoding('utf8');
    let text = '';
    s.on('data', (c: string) => {
      text += c;
      if (text === 'echo:ping') s.end();
    });
    s.write('ping');
    await once(s, 'close');
    assert.equal(text, 'echo:ping');
  });
});
