/**
 * DestinationRule `connectionPool.tcp.maxConnectionDuration` and `tcpKeepalive` on the
 * sidecar's upstream connections: a connection is used for requests until its maximum
 * age, then a new one is opened; keepalive probes are set as configured (SO_KEEPALIVE,
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT on the socket).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { tcpKeepaliveOf } from '../../src/proxy/listener/fast-accept.js';
import { send } from './http-backends.js';
import { Mesh, serviceYaml } from './mesh.js';

const MAX_AGE_MS = 400;

describe('upstream connection options from the DestinationRule', { timeout: 30_000 }, () => {
  let mesh: Mesh;
  let server: Server;
  let port = 0;
  /** performance.now() at each upstream connection the server accepted. */
  const opened: number[] = [];

  before(async () => {
    server = createServer((_req, res) => res.end(`connection ${opened.length}`));
    server.on('connection', () => opened.push(performance.now()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    const yaml = `${serviceYaml('aged')}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: aged-1}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: aged}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: aged}
spec:
  host: aged
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnectionDuration: ${MAX_AGE_MS / 1000}s
        tcpKeepalive: {time: 7s, interval: 3s, probes: 4}
`;
    mesh = await Mesh.start({ yaml });
    await mesh.waitForEndpoints('aged', (e) => e.length === 1);
  });

  after(async () => {
    await mesh?.close();
    server?.closeAllConnections();
    server?.close();
  });

  it('sets TCP keepalive as configured on an upstream connection', async (t) => {
    const r = await send(mesh.port, '/', { host: 'aged:8080' });
    assert.equal(r.status, 200);
    const pool = mesh.sidecar.config.upstream.pool('127.0.0.1', port);
    const c = pool.acquire();
    assert.notEqual(c, null, 'the connection is back in the pool');
    const options = tcpKeepaliveOf(c!.socket);
    pool.release(c!);
    if (options === null) {
      t.skip('the native helper is not built: only SO_KEEPALIVE and the idle time can be set');
      return;
    }
    assert.deepEqual(options, [1, 7, 3, 4], 'SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT');
  });

  it('keeps using a connection until maxConnectionDuration, then opens a new one', async () => {
    const before = opened.length;
    const start = performance.now();
    let requests = 0;
    // Sequential requests until the server has seen a second connection (bounded).
    while (opened.length < before + 2 && performance.now() - start < 10_000) {
      const r = await send(mesh.port, '/', { host: 'aged:8080' });
      assert.equal(r.status, 200);
      requests++;
    }
    const first = opened[before] ?? opened[opened.length - 1] as number;
    const second = opened[before + 1];
    assert.ok(second !== undefined, `no second connection after ${requests} requests`);
    console.log(`# ${requests} requests; a new upstream connection ${Math.round(second - first)} ms after the first (maxConnectionDuration ${MAX_AGE_MS} ms)`);
    assert.ok(requests > 2, 'the first connection served several requests');
    assert.ok(second - first >= MAX_AGE_MS - 5, `replaced after ${Math.round(second - first)} ms`);
  });
});
