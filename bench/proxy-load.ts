/**
 * The load of the proxy benchmark, all on the load core: wrk (HTTP/1.1 keep-alive) and
 * h2load (h2c) runs with their output parsed, and bursts of 1,000 connections (h2load, and
 * the Node client in `proxy-storm.ts`). While wrk runs, the proxy's CPU time (/proc stat,
 * before and after), its peak RSS (sampled every 100 ms) and what else used the cores
 * are read.
 */
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { busyUs, CORES, type CoreTimes, coreTimes, cpuTime, listenDrops, NO_CPU_TIME, type Proc, RssSampler, start } from './proxy-procs.js';
import type { StormResult } from './proxy-storm.js';

export const WARMUP_S = 2;
export const DURATION_S = 10;
export const STORM_CONNECTIONS = 1_000;
const STORM_TIMEOUT_MS = 15_000;
const H2_CONNECTIONS = 10;
const H2_STREAMS = 10;
export const H2_REQUESTS = 50_000;
/** The h2load warm-up before each measured run. */
const H2_WARMUP_REQUESTS = H2_REQUESTS / 10;

export interface WrkResult {
  readonly connections: number;
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx/3xx responses and socket errors: a run with either is suspect. */
  readonly non2xx: number;
  readonly socketErrors: string;
  /** The proxy's CPU per request in µs, user and kernel; null for the direct run. */
  readonly userUsPerReq: number | null;
  readonly systemUsPerReq: number | null;
  /** Peak RSS of the proxy during the measured run (MiB). */
  readonly peakRssMb: number | null;
  /**
   * What else ran during the measured run, in % of each core's time: processes other
   * than the proxy on core 1, other than wrk, the upstream and this process on core 0
   * (other work on the machine); time the hypervisor stole from both; and core 0's idle
   * time (near 0: the load generator and upstream, not the proxy, set the pace).
   */
  readonly othersOnProxyCorePct: number;
  readonly othersOnLoadCorePct: number;
  readonly stealPct: number;
  readonly loadCoreIdlePct: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

function durationMs(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text ?? '');
  if (m === null) return NaN;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

async function runTool(name: string, cmd: string, args: readonly string[], timeoutMs: number, onStart?: (p: Proc) => void): Promise<string> {
  const proc = start(name, cmd, args, { core: CORES.load });
  onStart?.(proc);
  const timer = setTimeout(() => void proc.stop(), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${name} failed: ${proc.describe()}\n${proc.stdout}`);
  return proc.stdout;
}

/** `https` runs the load over TLS (wrk and h2load do not verify the certificate; h2load negotiates h2 by ALPN). */
export type Scheme = 'http' | 'https';

function wrkArgs(port: number, host: string, connections: number, seconds: number, scheme: Scheme): string[] {
  return ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${host}`, `${scheme}://127.0.0.1:${port}/`];
}

type WrkOutput = Pick<WrkResult, 'connections' | 'requests' | 'rps' | 'p50Ms' | 'p99Ms' | 'non2xx' | 'socketErrors'>;

function parseWrk(out: string, connections: number): WrkOutput {
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    connections,
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)),
    p50Ms: r3(durationMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1])),
    p99Ms: r3(durationMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1])),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1]?.trim() ?? '',
  };
}

/** CPU time of our own processes on the two cores, read before and after a run. */
interface Accounts {
  readonly proxy: number;
  readonly upstream: number;
  readonly self: number;
  readonly core0: CoreTimes;
  readonly core1: CoreTimes;
}

function accounts(proxy: Proc | undefined, upstream: Proc): Accounts {
  const self = process.cpuUsage();
  return {
    proxy: proxy === undefined ? 0 : busyUs(cpuTime(proxy.tree())),
    upstream: busyUs(cpuTime(upstream.tree())),
    self: self.user + self.system,
    core0: coreTimes(CORES.load),
    core1: coreTimes(CORES.proxy),
  };
}

function disturbance(a: Accounts, b: Accounts, wrkUs: number): Pick<WrkResult, 'othersOnProxyCorePct' | 'othersOnLoadCorePct' | 'stealPct' | 'loadCoreIdlePct'> {
  const t0 = b.core0.totalUs - a.core0.totalUs || 1;
  const t1 = b.core1.totalUs - a.core1.totalUs || 1;
  const pct = (us: number, total: number): number => Math.max(0, Math.round((us / total) * 1000) / 10);
  return {
    othersOnProxyCorePct: pct(b.core1.taskUs - a.core1.taskUs - (b.proxy - a.proxy), t1),
    othersOnLoadCorePct: pct(b.core0.taskUs - a.core0.taskUs - (b.upstream - a.upstream) - (b.self - a.self) - wrkUs, t0),
    stealPct: pct(b.core0.stealUs - a.core0.stealUs + b.core1.stealUs - a.core1.stealUs, t0 + t1),
    loadCoreIdlePct: pct(b.core0.idleUs - a.core0.idleUs, t0),
  };
}

/**
 * wrk -t1 -c<connections>: a 2 s warm-up, then the measured 10 s run, with the proxy's
 * CPU time and peak RSS read around the measured run (`proxy` undefined: direct), and
 * what else used the cores meanwhile.
 */
export async function wrk(port: number, host: string, connections: number, proxy: Proc | undefined, upstream: Proc, scheme: Scheme = 'http'): Promise<WrkResult> {
  await runTool('wrk warm-up', 'wrk', wrkArgs(port, host, connections, WARMUP_S, scheme), (WARMUP_S + 15) * 1000);
  const sampler = proxy === undefined ? undefined : new RssSampler(proxy);
  const cpuBefore = proxy === undefined ? NO_CPU_TIME : cpuTime(proxy.tree());
  const before = accounts(proxy, upstream);
  // wrk's own CPU time, read every 100 ms while it runs (its /proc entry goes when it exits).
  let wrkCpu = NO_CPU_TIME;
  let wrkTimer: NodeJS.Timeout | undefined;
  const out = await runTool('wrk', 'wrk', wrkArgs(port, host, connections, DURATION_S, scheme), (DURATION_S + 15) * 1000, (p) => {
    wrkTimer = setInterval(() => {
      const t = cpuTime([p.pid]);
      if (busyUs(t) >= busyUs(wrkCpu)) wrkCpu = t;
    }, 100);
  });
  clearInterval(wrkTimer);
  const after = accounts(proxy, upstream);
  const cpuAfter = proxy === undefined ? NO_CPU_TIME : cpuTime(proxy.tree());
  const peakRssMb = sampler?.stop() ?? null;
  const parsed = parseWrk(out, connections);
  const perReq = (us: number): number | null => (proxy === undefined ? null : Math.round((us / parsed.requests) * 10) / 10);
  return {
    ...parsed,
    userUsPerReq: perReq(cpuAfter.userUs - cpuBefore.userUs),
    systemUsPerReq: perReq(cpuAfter.systemUs - cpuBefore.systemUs),
    peakRssMb,
    ...disturbance(before, after, busyUs(wrkCpu)),
  };
}

export interface H2Result {
  readonly requests: number;
  readonly succeeded: number;
  /** Responses with a 2xx status (a misrouted run answers 404s quickly). */
  readonly status2xx: number;
  readonly rps: number;
  readonly meanMs: number;
}

function parseH2load(out: string): H2Result {
  const m = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded/.exec(out);
  return {
    requests: Number(m?.[1] ?? 0),
    succeeded: Number(m?.[2] ?? 0),
    status2xx: Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0),
    rps: Math.round(Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN)),
    meanMs: Math.round(durationMs(/time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out)?.[1]) * 1000) / 1000,
  };
}

function h2Args(port: number, authority: string | undefined, requests: number, connections: number, streams: number, scheme: Scheme = 'http'): string[] {
  const args = [`-c${connections}`, `-m${streams}`, `-n${requests}`];
  if (authority !== undefined) args.push('-H', `:authority: ${authority}`);
  return [...args, `${scheme}://127.0.0.1:${port}/`];
}

/** Whether the port answers h2c (prior knowledge) with 200s: 10 requests, one connection. */
export async function speaksH2c(port: number, authority: string | undefined): Promise<boolean> {
  const out = await runTool('h2load probe', 'h2load', h2Args(port, authority, 10, 1, 1), 10_000).catch(() => '');
  return parseH2load(out).status2xx === 10;
}

/** h2load -c10 -m10 -n50000 after a 5,000-request warm-up. */
export async function h2load(port: number, authority: string | undefined, scheme: Scheme = 'http'): Promise<H2Result> {
  await runTool('h2load warm-up', 'h2load', h2Args(port, authority, H2_WARMUP_REQUESTS, H2_CONNECTIONS, H2_STREAMS, scheme), 60_000);
  return parseH2load(await runTool('h2load', 'h2load', h2Args(port, authority, H2_REQUESTS, H2_CONNECTIONS, H2_STREAMS, scheme), 120_000));
}

/** `h2load()` through `proxy`, and the proxy's CPU time (user + kernel) per request in µs, the warm-up's requests included. */
export async function h2loadCpu(port: number, authority: string | undefined, proxy: Proc): Promise<{ result: H2Result; cpuUs: number }> {
  const before = busyUs(cpuTime(proxy.tree()));
  const result = await h2load(port, authority);
  return { result, cpuUs: (busyUs(cpuTime(proxy.tree())) - before) / (result.requests + H2_WARMUP_REQUESTS) };
}

export const STORM_CLIENTS = { h2load: 'h2load', node: 'node' } as const;
export type StormClient = (typeof STORM_CLIENTS)[keyof typeof STORM_CLIENTS];

/** One burst of connections. Times in ms; what they span depends on the client (see `storm*`). */
export interface StormRun {
  readonly client: StormClient;
  readonly connections: number;
  readonly ok: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** h2load only: per connection, from its connect() to the response's first byte. */
  readonly ttfbMeanMs: number | null;
  readonly ttfbMaxMs: number | null;
  /** Kernel listen-queue overflows during the run (a handshake's last ACK dropped: the client retransmits after ≥ 200 ms). */
  readonly listenOverflows: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number);
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * h2load --h1 -c1000 -n1000: a C client connects 1,000 clients in one loop, each sends its
 * request as soon as it is connected. Percentiles are of each request's time from being
 * sent to its response's end (h2load's per-request log): a connection waiting in the
 * accept queue waits there. h2load's own time to first byte (from each connect()) is kept
 * too; it includes the ~40 ms the client takes to start 1,000 connections.
 */
export async function stormH2load(port: number, host: string, logFile: string): Promise<StormRun> {
  rmSync(logFile, { force: true });
  const before = listenDrops();
  const out = await runTool('h2load storm', 'h2load', ['--h1', `-c${STORM_CONNECTIONS}`, `-n${STORM_CONNECTIONS}`, '-t1', '-H', `:authority: ${host}`, `--log-file=${logFile}`, `http://127.0.0.1:${port}/`], STORM_TIMEOUT_MS + 10_000);
  const after = listenDrops();
  const rows = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => l.split('\t').map(Number));
  const ok = rows.filter((r) => r[1] === 200);
  const times = ok.map((r) => (r[2] as number) / 1000).sort((a, b) => a - b);
  const ttfb = /time to 1st byte:\s+\S+\s+(\S+)\s+(\S+)/.exec(out);
  return {
    client: 'h2load', connections: STORM_CONNECTIONS, ok: ok.length, failed: STORM_CONNECTIONS - ok.length,
    p50Ms: r1(percentile(times, 0.5)), p99Ms: r1(percentile(times, 0.99)), maxMs: r1(times[times.length - 1] ?? NaN),
    ttfbMeanMs: r1(durationMs(ttfb?.[2])), ttfbMaxMs: r1(durationMs(ttfb?.[1])),
    listenOverflows: after.overflows - before.overflows,
  };
}

/**
 * The same burst from a Node client (`proxy-storm.ts`): per connection, from its
 * connect() to the response's first byte. The client's own cost (~0.1 ms per connection
 * on this core) is in every figure.
 */
export async function stormNode(port: number, host: string): Promise<StormRun> {
  const script = fileURLToPath(new URL('./proxy-storm.js', import.meta.url));
  const before = listenDrops();
  const out = await runTool('storm client', process.execPath, [script, String(port), host, String(STORM_CONNECTIONS), String(STORM_TIMEOUT_MS)], STORM_TIMEOUT_MS + 10_000);
  const after = listenDrops();
  const r = JSON.parse(out.trim()) as StormResult;
  return {
    client: 'node', connections: r.connections, ok: r.ok, failed: r.failed, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: r.maxMs,
    ttfbMeanMs: null, ttfbMaxMs: null, listenOverflows: after.overflows - before.overflows,
  };
}
