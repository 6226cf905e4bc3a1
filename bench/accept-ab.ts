/**
 * A/B of the proxy's accept paths in one run: two Trellis sidecars that differ only in
 * `TRELLIS_NATIVE_ACCEPT` (the native accept helper, and node:net's `net.Server`).
 *
 * 1. Interleaved (A B, B A, ...), so that the machine's drift falls on both alike: per
 *    round and sidecar, wrk -c50 keep-alive (the proxy's CPU per request from /proc),
 *    then one burst of 1,000 connections at once (h2load).
 * 2. Concurrent: both sidecars under wrk -c50 at the same time, sharing the proxy core.
 *    Whatever else runs on the machine then disturbs both equally, and the scheduler
 *    gives each the same CPU time, so the ratio of their request counts is the inverse
 *    ratio of their costs per request. On a shared machine this is the steadier figure.
 *
 *   npm run build && tsc -p bench/tsconfig.json && node dist/bench/accept-ab.js [rounds]
 *
 * Same pinning as `proxy.ts`: wrk, h2load, the upstream and this process on core 0, the
 * sidecars on core 1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stormH2load, type StormRun, wrk, type WrkResult } from './proxy-load.js';
import { CORES, killAllSync, loadAverage, PINNING, pinSelf, type Proc, stopAll, which } from './proxy-procs.js';
import { startTrellis, startUpstream, type TrellisServer } from './proxy-servers.js';
import { median, sleep, table } from './stats.js';

const DEFAULT_ROUNDS = 6;
const SETTLE_MS = 500;
/** A run counts as quiet when other processes took at most this share of either core (%). */
const QUIET_PCT = 10;

interface Variant {
  readonly name: string;
  readonly env: NodeJS.ProcessEnv;
  /** What the sidecar's `listening` log line must say, so a silent fallback is caught. */
  readonly nativeAccept: boolean;
}

const VARIANTS: readonly [Variant, Variant] = [
  { name: 'native helper', env: { TRELLIS_NATIVE_ACCEPT: '1' }, nativeAccept: true },
  { name: 'node:net', env: { TRELLIS_NATIVE_ACCEPT: '0' }, nativeAccept: false },
];

interface Sample {
  readonly variant: string;
  readonly round: number;
  readonly c50: WrkResult;
  readonly storm: StormRun | null;
}

/** One concurrent run: the first variant's figure over the second's. */
interface Pair {
  readonly requests: number;
  readonly cpuPerReq: number;
}

interface Setup {
  readonly dir: string;
  readonly upstream: Proc;
  readonly servers: readonly [TrellisServer, TrellisServer];
  readonly h2load: boolean;
}

const cpuPerReq = (r: WrkResult): number => (r.userUsPerReq ?? NaN) + (r.systemUsPerReq ?? NaN);
/** Share of the measured run the proxy was on its core: below ~95 %, something else set the pace. */
const proxyBusyPct = (r: WrkResult): number => Math.round((cpuPerReq(r) * r.rps) / 1e4);

function checkAcceptPath(server: TrellisServer, v: Variant): void {
  const log = server.proc.stdout + server.proc.stderr;
  const m = /listening.*?nativeAccept[":=\s]+(true|false)/.exec(log);
  if (m === null) throw new Error(`${v.name}: no 'listening' log line with nativeAccept in the sidecar's output`);
  if ((m[1] === 'true') !== v.nativeAccept) throw new Error(`${v.name}: sidecar says nativeAccept=${m[1]}`);
}

async function interleaved(setup: Setup, rounds: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let round = 0; round < rounds; round++) {
    // A B, then B A: a drift within a round costs both variants alike.
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const v = VARIANTS[i] as Variant;
      const server = setup.servers[i] as TrellisServer;
      await sleep(SETTLE_MS);
      const c50 = await wrk(server.port, server.host, 50, server.proc, setup.upstream);
      await sleep(SETTLE_MS);
      const storm = setup.h2load ? await stormH2load(server.port, server.host, join(setup.dir, 'storm.log')) : null;
      samples.push({ variant: v.name, round, c50, storm });
      console.log(`round ${round} ${v.name}: ${c50.rps} req/s, ${cpuPerReq(c50).toFixed(1)} µs/req (${c50.userUsPerReq} + ${c50.systemUsPerReq}), ` +
        `proxy busy ${proxyBusyPct(c50)}%, others on proxy/load core ${c50.othersOnProxyCorePct}/${c50.othersOnLoadCorePct}%${storm === null ? '' : `; storm p99 ${storm.p99Ms} ms (${storm.failed} failed)`}`);
    }
  }
  return samples;
}

async function concurrent(setup: Setup, rounds: number): Promise<Pair[]> {
  const pairs: Pair[] = [];
  const [a, b] = setup.servers;
  for (let round = 0; round < rounds; round++) {
    await sleep(SETTLE_MS);
    const [x, y] = await Promise.all([a, b].map((s) => wrk(s.port, s.host, 50, s.proc, setup.upstream))) as [WrkResult, WrkResult];
    const pair = { requests: x.requests / y.requests, cpuPerReq: cpuPerReq(x) / cpuPerReq(y) };
    pairs.push(pair);
    console.log(`concurrent ${round}: ${VARIANTS[0].name} ${x.requests} requests, ${cpuPerReq(x).toFixed(1)} µs/req; ` +
      `${VARIANTS[1].name} ${y.requests} requests, ${cpuPerReq(y).toFixed(1)} µs/req; ratios ${pair.requests.toFixed(3)} / ${pair.cpuPerReq.toFixed(3)}`);
  }
  return pairs;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? DEFAULT_ROUNDS);
  const h2load = which('h2load') !== undefined;
  if (which('wrk') === undefined) throw new Error('wrk not installed (apt-get install wrk)');
  pinSelf(CORES.load);
  console.log(`load average ${loadAverage()}; pinned: ${PINNING}; ${rounds} rounds; storms: ${h2load ? 'h2load' : 'skipped (no h2load)'}`);
  const dir = mkdtempSync(join(tmpdir(), 'trellis-accept-ab-'));
  const servers: TrellisServer[] = [];
  let samples: Sample[];
  let pairs: Pair[];
  try {
    const upstream = await startUpstream(dir, which('nginx') !== undefined);
    for (const v of VARIANTS) {
      const server = await startTrellis(dir, upstream.port, [], { env: v.env, logLevel: 'info' });
      servers.push(server);
      checkAcceptPath(server, v);
    }
    const setup: Setup = { dir, upstream: upstream.proc, servers: servers as [TrellisServer, TrellisServer], h2load };
    samples = await interleaved(setup, rounds);
    pairs = await concurrent(setup, rounds);
  } finally {
    for (const s of servers) await s.controlPlane.close();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n## wrk -t1 -c50 keep-alive through the sidecar, and 1,000 connections at once; load average now ${loadAverage()}`);
  printSummary('interleaved, all runs', samples);
  printSummary(`interleaved, runs where other processes took ≤ ${QUIET_PCT}% of either core`, samples.filter(isQuiet));
  printPaired(samples);
  const list = (xs: number[]): string => `${xs.map((x) => x.toFixed(3)).join(' ')} (median ${median(xs).toFixed(3)})`;
  console.log(`concurrent, ${VARIANTS[0].name} / ${VARIANTS[1].name}: requests ${list(pairs.map((p) => p.requests))}; CPU µs/req ${list(pairs.map((p) => p.cpuPerReq))}`);
}

function isQuiet(s: Sample): boolean {
  return s.c50.othersOnProxyCorePct <= QUIET_PCT && s.c50.othersOnLoadCorePct <= QUIET_PCT;
}

function printSummary(title: string, samples: readonly Sample[]): void {
  console.log(`\n${title}:`);
  const rows: (string | number)[][] = [['variant', 'runs', 'req/s median', 'min–max', 'CPU µs/req median (user + kernel)', 'storm p99 ms median', 'storm p99 per run']];
  for (const v of VARIANTS) {
    const mine = samples.filter((s) => s.variant === v.name);
    if (mine.length === 0) continue;
    const rps = mine.map((s) => s.c50.rps);
    const storms = mine.flatMap((s) => (s.storm === null ? [] : [s.storm.p99Ms]));
    rows.push([
      v.name, mine.length, Math.round(median(rps)), `${Math.min(...rps)}–${Math.max(...rps)}`,
      `${median(mine.map((s) => cpuPerReq(s.c50))).toFixed(1)} (${median(mine.map((s) => s.c50.userUsPerReq ?? NaN)).toFixed(1)} + ${median(mine.map((s) => s.c50.systemUsPerReq ?? NaN)).toFixed(1)})`,
      storms.length === 0 ? '—' : median(storms).toFixed(1), storms.join(' / '),
    ]);
  }
  console.log(rows.length === 1 ? '(none)' : table(rows));
}

/** Per interleaved round, the first variant over the second (their runs are under a minute apart). */
function printPaired(samples: readonly Sample[]): void {
  const [a, b] = VARIANTS;
  const rps: number[] = [];
  const cpu: number[] = [];
  for (const round of new Set(samples.map((s) => s.round))) {
    const x = samples.find((s) => s.round === round && s.variant === a.name);
    const y = samples.find((s) => s.round === round && s.variant === b.name);
    if (x === undefined || y === undefined) continue;
    rps.push(x.c50.rps / y.c50.rps);
    cpu.push(cpuPerReq(x.c50) / cpuPerReq(y.c50));
  }
  const list = (xs: number[]): string => `${xs.map((x) => x.toFixed(2)).join(' ')} (median ${median(xs).toFixed(2)})`;
  console.log(`\ninterleaved, ${a.name} / ${b.name} per round: req/s ${list(rps)}; CPU µs/req ${list(cpu)}`);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopAll().finally(() => process.exit(130)));
process.on('exit', killAllSync);

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
