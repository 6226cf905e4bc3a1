/**
 * End to end over HTTP/1.1: control plane, a gateway proxy and a sidecar proxy, real
 * HTTP backends — all on 127.0.0.1. The sidecar is used as applications use it in the
 * local mesh: as their HTTP_PROXY (absolute-form requests).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { freePort, type HttpBackend, keepAliveAgent, rawExchange, send, startEchoServers, startHttpBackend } from './http-backends.js';

const log = new Logger({ level: 'warn' });
const REVIEWS = 'reviews.default.svc.cluster.local';

function config(backends: Record<string, HttpBackend>, gatewayPort: number, echo: { tcpPort: number; wsPort: number }): string {
  const we = (name: string, labels: string) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {http: ${(backends[name] as HttpBackend).port}}, labels: {${labels}}}
`;
  return `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: productpage}
spec: {selector: {app: productpage}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo}
spec: {selector: {app: tcp-echo}, ports: [{name: tcp, port: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: chat}
spec: {selector: {app: chat}, ports: [{name: http, port: 8000}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: tcp-echo}
spec: {address: 127.0.0.1, ports: {tcp: ${echo.tcpPort}}, labels: {app: tcp-echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: chat}
spec: {address: 127.0.0.1, ports: {http: ${echo.wsPort}}, labels: {app: chat}}
${we('reviews-v1', 'app: reviews, version: v1')}${we('reviews-v2', 'app: reviews, version: v2')}${we('productpage-v1', 'app: productpage, version: v1')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
    headers: {response: {set: {x-route: jason}}}
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 70}
    - {destination: {host: reviews, subset: v2}, weight: 30}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: ${gatewayPort}, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
  - match: [{uri: {prefix: /chat}}]
    route: [{destination: {host: chat, port: {number: 8000}}}]
`;
}

describe('HTTP/1.1 through Trellis proxies', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-e2e-'));
  const backends: Record<string, HttpBackend> = {};
  let cp: ControlPlane;
  let gateway: Proxy;
  let sidecar: Proxy;
  let gatewayPort = 0;
  let sidecarPort = 0;
  let echo: Awaited<ReturnType<typeof startEchoServers>>;

  before(async () => {
    for (const name of ['reviews-v1', 'reviews-v2', 'productpage-v1']) backends[name] = await startHttpBackend(name);
    gatewayPort = await freePort();
    echo = await startEchoServers();
    writeFileSync(join(dir, 'mesh.yaml'), config(backends, gatewayPort, echo));
    // REGISTRY_ONLY: nothing in these tests may leave 127.0.0.1 through passthrough.
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    const common = { xds: `127.0.0.1:${cp.xdsPort}`, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, adminPort: 0, statsPort: 0, log };
    gateway = new Proxy({ ...common, type: 'router', id: 'ingressgateway', serviceAccount: 'ingressgateway', labels: { istio: 'ingressgateway' }, outboundPort: 0 });
    sidecar = new Proxy({ ...common, type: 'sidecar', id: 'productpage-sidecar', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' }, outboundPort: 0 });
    await Promise.all([gateway.start(), sidecar.start()]);
    await gateway.waitFor((s) => s.routes.has(`http.${gatewayPort}`) && (s.clusters.get(`outbound|9080||productpage.default.svc.cluster.local`)?.endpoints.length ?? 0) > 0);
    await sidecar.waitFor((s) => s.routes.has('9080') && (s.clusters.get(`outbound|9080|v2|${REVIEWS}`)?.endpoints.length ?? 0) > 0);
    sidecarPort = sidecar.listenerPort('virtualOutbound') as number;
  });

  after(async () => {
    keepAliveAgent.destroy();
    await Promise.all([gateway?.close(), sidecar?.close()]);
    await cp?.close();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes through the gateway by path, and answers 404 (NR) when no route matches', async () => {
    const ok = await send(gatewayPort, '/productpage', { host: 'bookinfo.example.com' });
    assert.equal(ok.status, 200);
    const body = JSON.parse(ok.body) as { backend: string; headers: Record<string, string> };
    assert.equal(body.backend, 'productpage-v1');
    assert.equal(body.headers.host, 'bookinfo.example.com');
    assert.ok(body.headers['x-request-id'], 'x-request-id generated');
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
    // One value, the gateway's own: the backend's (its sidecar's) is replaced, not repeated.
    assert.match(String(ok.headers['x-envoy-upstream-service-time']), /^\d+$/);
    assert.notEqual(ok.headers['x-envoy-upstream-service-time'], '999999');
    const nr = await send(gatewayPort, '/admin');
    assert.equal(nr.status, 404);
  });

  it('routes an application\'s absolute-form (HTTP_PROXY) requests by host and header', async () => {
    const jason = await send(sidecarPort, 'http://reviews:9080/reviews/1', { host: 'reviews:9080', 'end-user': 'jason' });
    assert.equal(JSON.parse(jason.body).backend, 'reviews-v2');
    assert.equal(jason.headers['x-route'], 'jason');
    const redirect = await send(sidecarPort, 'http://reviews:9080/old', { host: 'reviews:9080' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, 'http://reviews:9080/new');
  });

  it('splits 70/30 within 3 points over 5,000 requests', async () => {
    const counts: Record<string, number> = {};
    const total = 5_000;
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < total) {
        next++;
        const r = await send(sidecarPort, 'http://reviews:9080/', { host: 'reviews:9080' });
        const b = JSON.parse(r.body).backend as string;
        counts[b] = (counts[b] ?? 0) + 1;
      }
    }));
    const v1 = ((counts['reviews-v1'] ?? 0) / total) * 100;
    console.log(`# 70/30 split over ${total} requests: v1 ${v1.toFixed(2)}%, v2 ${(100 - v1).toFixed(2)}%`);
    assert.ok(Math.abs(v1 - 70) <= 3, `v1 got ${v1}%`);
  });

  it('passes request bodies through, chunked and with Content-Length', async () => {
    const r = await send(sidecarPort, 'http://reviews:9080/post', { host: 'reviews:9080', 'content-type': 'text/plain' }, 'POST', 'hello body');
    assert.equal(JSON.parse(r.body).body, 'hello body');
  });

  it('relays Expect: 100-continue end to end: the app\'s 100, then the body and the answer; a refusal without the body', async () => {
    let interim = '';
    const head = (path: string) => `POST http://reviews:9080${path} HTTP/1.1\r\nHost: reviews:9080\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`;
    const got = await rawExchange(sidecarPort, head('/upload'), /"body":"hello"/, (s, sofar) => {
      interim = sofar; // the client holds its body until the 100 arrives
      s.write('hello');
    });
    assert.match(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const refused = await rawExchange(sidecarPort, head('/reject'), /\r\n\r\n/);
    assert.match(refused, /^HTTP\/1\.1 417 /, 'the final refusal comes through; no body was ever sent');
    assert.match(refused, /x-backend: reviews-v[12]/);
  });

  it('rejects malformed requests with 400/431, closes that connection, and keeps serving', async () => {
    const raw = (data: string) => new Promise<string>((resolve) => {
      const s = connect(gatewayPort, '127.0.0.1');
      let out = '';
      s.on('data', (c) => (out += c.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
      s.write(data);
    });
    const smuggle = await raw('POST /productpage HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.match(smuggle, /^HTTP\/1\.1 400 /);
    const big = await raw(`GET /productpage HTTP/1.1\r\nHost: a\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.equal((await send(gatewayPort, '/productpage')).status, 200);
  });

  it('tunnels TCP through CONNECT to a TCP service', async () => {
    const got = await rawExchange(sidecarPort, 'CONNECT tcp-echo:9000 HTTP/1.1\r\nHost: tcp-echo:9000\r\n\r\n', /ping-tcp/, (s) => s.write('ping-tcp'));
    assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\nping-tcp$/);
    const unknown = await rawExchange(sidecarPort, 'CONNECT nowhere:9999 HTTP/1.1\r\nHost: nowhere:9999\r\n\r\n', /\r\n\r\n/);
    assert.match(unknown, /^HTTP\/1\.1 (404|502|503) /);
  });

  it('upgrades to WebSocket through the gateway and tunnels both ways', async () => {
    const req = 'GET /chat HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const got = await rawExchange(gatewayPort, req, /hello-ws$/, (s) => s.write('hello-ws'));
    assert.match(got, /^HTTP\/1\.1 101 /);
    assert.match(got, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  });

  it('reports Istio standard metrics with response codes and flags', async () => {
    const res = await fetch(`http://127.0.0.1:${gateway.statsPort}/stats/prometheus`);
    const text = await res.text();
    assert.match(text, /istio_requests_total\{reporter="source",source_workload="ingressgateway".*destination_service="productpage\.default\.svc\.cluster\.local".*response_code="200".*response_flags="-".*\} \d+/);
    assert.match(text, /istio_requests_total\{.*response_code="404".*response_flags="NR".*\} 1/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{.*le="0\.5"\} \d+/);
    const side = await (await fetch(`http://127.0.0.1:${sidecar.statsPort}/stats/prometheus`)).text();
    assert.match(side, /istio_tcp_connections_opened_total\{reporter="source".*destination_service="tcp-echo\.default\.svc\.cluster\.local".*request_protocol="tcp".*\} 1/);
  });
});
