/**
 * Gateway listeners that are not HTTP: a TCP server port proxied to a TCP service, and a
 * TLS passthrough port routed by the ClientHello's server name (exact and wildcard
 * `sniHosts`) to different backends without terminating TLS — control plane, gateway
 * proxy and backends on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { inspectClientHello } from '../../src/proxy/tls/client-hello.js';
import { freePort, startEchoServers } from './http-backends.js';

const log = new Logger({ level: 'warn' });

interface Hello {
  readonly backend: string;
  readonly sni: string | undefined;
}

/** A TCP server standing in for a TLS backend: it reports which server name each connection's hello carried. */
async function helloRecorder(name: string, seen: EventEmitter): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const r = inspectClientHello(buf);
      if (r.kind === 'incomplete') return;
      seen.emit('hello', { backend: name, sni: r.kind === 'tls' ? r.hello.serverName : undefined } satisfies Hello);
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server, sockets };
}

function config(tcpGatewayPort: number, tlsGatewayPort: number, echoPort: number, tlsA: number, tlsB: number): string {
  const svc = (name: string, port: number, portName: string) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {selector: {app: ${name}}, ports: [{name: ${portName}, port: ${port}}]}
`;
  const we = (name: string, portName: string, port: number) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {${portName}: ${port}}, labels: {app: ${name}}}
`;
  return `${svc('tcp-echo', 9000, 'tcp')}${svc('tls-a', 443, 'tls')}${svc('tls-b', 443, 'tls')}${we('tcp-echo', 'tcp', echoPort)}${we('tls-a', 'tls', tlsA)}${we('tls-b', 'tls', tlsB)}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: ${tcpGatewayPort}, name: tcp, protocol: TCP}, hosts: ["*"]}
  - {port: {number: ${tlsGatewayPort}, name: tls, protocol: TLS}, hosts: ["*"], tls: {mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-tcp}
spec:
  hosts: ["*"]
  gateways: [edge]
  tcp:
  - match: [{port: ${tcpGatewayPort}}]
    route: [{destination: {host: tcp-echo, port: {number: 9000}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-tls}
spec:
  hosts: ["*"]
  gateways: [edge]
  tls:
  - match: [{port: ${tlsGatewayPort}, sniHosts: [a.example.com]}]
    route: [{destination: {host: tls-a, port: {number: 443}}}]
  - match: [{port: ${tlsGatewayPort}, sniHosts: ["*.wild.example.com"]}]
    route: [{destination: {host: tls-b, port: {number: 443}}}]
`;
}

describe('gateway TCP and TLS passthrough listeners', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-listeners-e2e-'));
  const seen = new EventEmitter();
  let cp: ControlPlane;
  let gateway: Proxy;
  let echo: Awaited<ReturnType<typeof startEchoServers>>;
  const recorders: Awaited<ReturnType<typeof helloRecorder>>[] = [];
  let tcpPort = 0;
  let tlsPort = 0;

  before(async () => {
    echo = await startEchoServers();
    recorders.push(await helloRecorder('tls-a', seen), await helloRecorder('tls-b', seen));
    tcpPort = await freePort();
    tlsPort = await freePort();
    writeFileSync(join(dir, 'mesh.yaml'), config(tcpPort, tlsPort, echo.tcpPort, (recorders[0] as { port: number }).port, (recorders[1] as { port: number }).port));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    gateway = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, outboundPort: 0, adminPort: 0, statsPort: 0, log, type: 'router', id: 'edge-gateway', serviceAccount: 'edge', labels: { istio: 'ingressgateway' } });
    await gateway.start();
    await gateway.waitFor((s) => s.listeners.has(`0.0.0.0_${tcpPort}`) && s.listeners.has(`0.0.0.0_${tlsPort}`) && ['tcp-echo', 'tls-a', 'tls-b'].every((n) => (s.clusters.get(`outbound|${n === 'tcp-echo' ? 9000 : 443}||${n}.default.svc.cluster.local`)?.endpoints.length ?? 0) > 0));
  });

  after(async () => {
    await gateway?.close();
    await cp?.close();
    await echo?.close();
    for (const r of recorders) {
      for (const s of r.sockets) s.destroy();
      await new Promise<void>((res) => r.server.close(() => res()));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('proxies a TCP server port to its service, bytes both ways', async () => {
    const s = connect(tcpPort, '127.0.0.1');
    s.write('ping over tcp');
    let got = '';
    for await (const chunk of s) {
      got += String(chunk);
      if (got === 'ping over tcp') break;
    }
    s.destroy();
    assert.equal(got, 'ping over tcp');
  });

  /** Starts a TLS handshake through the gateway and resolves with the backend that got the hello. */
  async function routeOf(servername: string): Promise<Hello> {
    const got = once(seen, 'hello') as Promise<[Hello]>;
    const c = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername, rejectUnauthorized: false });
    c.on('error', () => undefined); // the backends never complete the handshake
    const [hello] = await got;
    c.destroy();
    return hello;
  }

  it('routes TLS by SNI without terminating it: exact and wildcard sniHosts', async () => {
    assert.deepEqual(await routeOf('a.example.com'), { backend: 'tls-a', sni: 'a.example.com' });
    assert.deepEqual(await routeOf('x.wild.example.com'), { backend: 'tls-b', sni: 'x.wild.example.com' });
    assert.deepEqual(await routeOf('A.Example.Com'), { backend: 'tls-a', sni: 'a.example.com' });
  });

  it('closes a TLS connection whose server name no route matches, and keeps serving', async () => {
    let reached = false;
    const onHello = (): void => {
      reached = true;
    };
    seen.on('hello', onHello);
    const c = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'other.example.org', rejectUnauthorized: false });
    c.on('error', () => undefined);
    await new Promise((resolve) => c.on('close', resolve)); // events.once would reject on the handshake error
    seen.off('hello', onHello);
    assert.equal(reached, false, 'no backend saw the connection');
    // Plain bytes that are not TLS have no server name either.
    const plain = connect(tlsPort, '127.0.0.1');
    plain.on('error', () => undefined);
    plain.write('GET / HTTP/1.1\r\n\r\n');
    await new Promise((resolve) => plain.on('close', resolve));
    assert.deepEqual(await routeOf('a.example.com'), { backend: 'tls-a', sni: 'a.example.com' });
  });
});
