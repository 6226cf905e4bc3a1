/**
 * `npm run bench` (third part): TLS termination at the edge. The Trellis gateway
 * (`--type router`, an Istio Gateway HTTPS server in SIMPLE mode) against nginx (one
 * worker, `listen ssl http2`), both on the proxy core, both forwarding over HTTP/1.1
 * keep-alive to the same upstream (nginx `return 200 "ok"`), with one ECDSA P-256
 * certificate. Two loads, interleaved round by round so that drift of the machine's
 * speed hits both alike:
 *
 * - HTTPS/1.1 keep-alive, `wrk -t1 -c50` (2 s warm-up, 10 s measured);
 * - HTTP/2 over TLS (ALPN h2), `h2load -c10 -m10 -n50000` after a 5,000-request warm-up.
 *
 *   node dist/bench/proxy-tls.js [rounds]
 *
 * Prints each round, then the medians and the ratios to nginx (each round's own ratio,
 * then their median). A benchmark, not a test: it asserts nothing about the figures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCa, writePair } from '../test/tls-certs.js';
import { h2load, type H2Result, wrk, type WrkResult } from './proxy-load.js';
import { CORES, killAllSync, pinSelf, stopAll, which } from './proxy-procs.js';
import { GATEWAY_HOST, type Server, startNginxTlsProxy, startTrellisGateway, startUpstream, type TrellisServer } from './proxy-servers.js';
import { median, table } from './stats.js';

const DEFAULT_ROUNDS = 3;

interface Target {
  readonly name: string;
  readonly server: Server;
  readonly https1: WrkResult[];
  readonly h2: H2Result[];
}

async function main(): Promise<void> {
  const missing = ['nginx', 'wrk', 'h2load'].filter((tool) => which(tool) === undefined);
  console.log('\n# TLS termination: the Trellis gateway vs nginx, HTTPS/1.1 (wrk -c50) and HTTP/2 over TLS (h2load -c10 -m10)');
  if (missing.length > 0) {
    console.log(`${missing.join(', ')} not installed: skipping the TLS benchmark (apt-get install nginx wrk nghttp2-client)`);
    return;
  }
  const rounds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? DEFAULT_ROUNDS);
  pinSelf(CORES.load);
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-bench-'));
  let gateway: TrellisServer | undefined;
  try {
    const ca = await TestCa.create('Bench CA');
    const files = writePair(dir, 'gateway', await ca.issue({ dns: [GATEWAY_HOST] }));
    const upstream = await startUpstream(dir, true);
    const nginx = await startNginxTlsProxy(dir, upstream.port, files);
    gateway = await startTrellisGateway(join(dir, 'trellis'), upstream.port, files, []);
    const targets: Target[] = [
      { name: 'nginx', server: nginx, https1: [], h2: [] },
      { name: 'Trellis gateway', server: gateway, https1: [], h2: [] },
    ];
    for (let r = 1; r <= rounds; r++) {
      const line: string[] = [];
      for (const t of targets) {
        const w = await wrk(t.server.port, t.server.host, 50, t.server.proc, upstream.proc, 'https');
        const h = await h2load(t.server.port, t.server.host, 'https');
        if (w.non2xx > 0 || w.socketErrors !== '') throw new Error(`${t.name}: wrk saw ${w.non2xx} non-2xx responses, socket errors ${w.socketErrors}`);
        if (h.status2xx !== h.requests) throw new Error(`${t.name}: ${h.status2xx} of ${h.requests} h2 requests answered 2xx`);
        t.https1.push(w);
        t.h2.push(h);
        line.push(`${t.name} ${w.rps} HTTPS/1.1, ${h.rps} h2`);
      }
      console.log(`round ${r}: ${line.join('; ')} req/s`);
    }
    const [base] = targets as [Target, Target];
    const rows: (string | number)[][] = [['through', 'load', 'median req/s', 'vs nginx, same round (median)', 'runs', 'p50 / p99 ms (median)', 'proxy CPU µs/req user+kernel (median)', 'peak RSS MiB']];
    for (const t of targets) {
      const paired1 = median(t.https1.map((x, i) => x.rps / (base.https1[i]?.rps ?? NaN)));
      const cpu = `${median(t.https1.map((x) => x.userUsPerReq ?? NaN)).toFixed(1)} + ${median(t.https1.map((x) => x.systemUsPerReq ?? NaN)).toFixed(1)}`;
      rows.push([t.name, 'HTTPS/1.1 wrk -c50', Math.round(median(t.https1.map((x) => x.rps))), paired1.toFixed(3), t.https1.map((x) => x.rps).join(' '),
        `${median(t.https1.map((x) => x.p50Ms)).toFixed(3)} / ${median(t.https1.map((x) => x.p99Ms)).toFixed(3)}`, cpu, Math.max(...t.https1.map((x) => x.peakRssMb ?? NaN)).toFixed(1)]);
      const paired2 = median(t.h2.map((x, i) => x.rps / (base.h2[i]?.rps ?? NaN)));
      rows.push([t.name, 'h2 over TLS h2load -c10 -m10', Math.round(median(t.h2.map((x) => x.rps))), paired2.toFixed(3), t.h2.map((x) => x.rps).join(' '), `mean ${median(t.h2.map((x) => x.meanMs)).toFixed(3)}`, '—', '—']);
    }
    console.log(`\n## TLS termination, ${rounds} interleaved rounds`);
    console.log(table(rows));
  } finally {
    await gateway?.proc.stop();
    await gateway?.controlPlane.close();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopAll().finally(() => process.exit(130)));

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
