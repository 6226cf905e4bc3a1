/**
 * Run inside a network namespace of its own (by test/e2e/proxy-inbound.test.ts, with
 * `unshare --net`, TRELLIS_NETNS_PARENT naming the namespace it left), as root: a pod-like setup on loopback where iptables captures
 * traffic for the workload's address, as Istio's init container does. Prints one JSON
 * line with what it observed and exits.
 *
 *   productpage app ──HTTP_PROXY──▶ sidecar A (outbound) ──▶ 10.0.0.2:9080
 *        iptables: -d 10.0.0.2 --dport 9080 REDIRECT → sidecar B's virtualInbound (15006)
 *   sidecar B (SO_ORIGINAL_DST = 10.0.0.2:9080 → inbound|9080||) ──▶ reviews app 127.0.0.1:9080
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../../src/control-plane/control-plane.js';
import { Logger } from '../../../src/core/log.js';
import { Proxy } from '../../../src/proxy/proxy.js';

const POD_IP = '10.0.0.2';
const APP_PORT = 9080;
const INBOUND_PORT = 15006;

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function get(proxyPort: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: u.host } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The test runner also loads every file under test/ on its own: this one changes
 * addresses and iptables rules, so it acts only when the test started it in a network
 * namespace of its own.
 */
function inOwnNamespace(): boolean {
  const parent = process.env.TRELLIS_NETNS_PARENT;
  if (parent === undefined || parent === '') return false;
  try {
    return readlinkSync('/proc/self/ns/net') !== parent;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  if (!inOwnNamespace()) return;
  sh('ip', ['link', 'set', 'lo', 'up']);
  sh('ip', ['addr', 'add', `${POD_IP}/32`, 'dev', 'lo']);
  sh('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', POD_IP, '--dport', String(APP_PORT), '-j', 'REDIRECT', '--to-ports', String(INBOUND_PORT)]);

  const log = new Logger({ level: 'warn' });
  const seen: Record<string, string | string[] | undefined>[] = [];
  const app = createServer((req, res) => {
    seen.push({ ...req.headers, 'x-local-address': req.socket.localAddress });
    res.end('reviews-v1 says hi');
  });
  await new Promise<void>((r) => app.listen(APP_PORT, '127.0.0.1', r));

  const dir = mkdtempSync(join(tmpdir(), 'trellis-inbound-'));
  writeFileSync(join(dir, 'mesh.yaml'), `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{name: http, port: ${APP_PORT}}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: ${POD_IP}, ports: {http: ${APP_PORT}}, labels: {app: reviews, version: v1}}
`);
  const cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
  await cp.start();
  const common = { xds: `127.0.0.1:${cp.xdsPort}`, namespace: 'default', bind: '0.0.0.0', adminPort: -1, statsPort: -1, log, type: 'sidecar' as const };
  const a = new Proxy({ ...common, id: 'productpage-v1-pod', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' }, outboundPort: 0, inboundPort: 0 });
  const b = new Proxy({ ...common, id: 'reviews-v1-pod', serviceAccount: 'bookinfo-reviews', labels: { app: 'reviews', version: 'v1' }, outboundPort: 0, inboundPort: INBOUND_PORT });
  const result: Record<string, unknown> = {};
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitFor((s) => (s.clusters.get('outbound|9080||reviews.default.svc.cluster.local')?.endpoints.length ?? 0) > 0);
    await b.waitFor((s) => s.listeners.has('virtualInbound') && s.clusters.has('inbound|9080||'));
    const outbound = a.listenerPort('virtualOutbound') as number;
    const r = await get(outbound, `http://reviews:${APP_PORT}/reviews/1`);
    result.status = r.status;
    result.body = r.body;
    result.appSaw = seen;
    result.sourceMetrics = a.metrics.render().split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    result.destinationMetrics = b.metrics.render().split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    // A connection to the inbound port that was not captured has no chain: closed.
    result.uncaptured = await get(INBOUND_PORT, 'http://reviews:9080/').then((x) => `status ${x.status}`, (err: Error) => `error ${(err as NodeJS.ErrnoException).code ?? err.message}`);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await cp.close();
    app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
