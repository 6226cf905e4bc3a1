/**
 * The HTTP/2 part of the proxy benchmark alone, for A/B work on the h2 path: h2load h2c
 * (`-c10 -m10 -n50000` after a 5,000-request warm-up, as `npm run bench`) through nginx's
 * http2 listener and the Trellis sidecar's outbound listener, both forwarding over
 * HTTP/1.1 keep-alive to the same upstream (nginx `return 200 "ok"`), interleaved
 * round by round so that drift of the machine's speed hits every server alike. Prints
 * each round and the medians.
 *
 *   node dist/bench/proxy-h2.js [rounds] [name=<build dir> ...]
 *
 * Each `name=<dir>` adds another Trellis sidecar run from another build of the repository
 * (its `dist/src/cli/bin.js`), e.g. the tree before a change, to compare in the same run.
 * `TRELLIS_BENCH_CPU_PROF=<dir>` runs the sidecars with `node --cpu-prof`.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type H2Result, h2loadCpu } from './proxy-load.js';
import { printProfile, summarizeProfile } from './proxy-profile.js';
import { CORES, killAllSync, pinSelf, type Proc, stopAll, which } from './proxy-procs.js';
import { type Server, startNginxProxy, startTrellis, startUpstream, type TrellisServer } from './proxy-servers.js';
import { median, table } from './stats.js';

const DEFAULT_ROUNDS = 5;

interface Target {
  readonly name: string;
  readonly proc: Proc;
  readonly port: number;
  readonly authority: string | undefined;
  readonly runs: H2Result[];
  /** The proxy's CPU time (user + kernel) per request of each run, in µs: less disturbed by other work on the machine than req/s. */
  readonly cpuUs: number[];
}

async function main(): Promise<void> {
  for (const tool of ['nginx', 'h2load']) {
    if (which(tool) === undefined) {
      console.log(`${tool} not installed: skipping`);
      return;
    }
  }
  const args = process.argv.slice(2);
  const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? DEFAULT_ROUNDS);
  const builds: [string, string][] = [['Trellis', fileURLToPath(new URL('../src/cli/bin.js', import.meta.url))]];
  for (const a of args) {
    const m = /^([^=]+)=(.+)$/.exec(a);
    if (m !== null) builds.push([m[1] as string, join(resolve(m[2] as string), 'dist/src/cli/bin.js')]);
  }
  pinSelf(CORES.load);
  const profDir = process.env.TRELLIS_BENCH_CPU_PROF;
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'trellis-h2-bench-'));
  const sidecars: TrellisServer[] = [];
  try {
    const upstream = await startUpstream(dir, true);
    const nginx: Server = await startNginxProxy(dir, upstream.port);
    const targets: Target[] = [{ name: 'nginx', proc: nginx.proc, port: nginx.h2cPort as number, authority: undefined, runs: [], cpuUs: [] }];
    for (const [name, bin] of builds) {
      const nodeArgs = profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(profDir, name)}`];
      const t = await startTrellis(join(dir, name), upstream.port, nodeArgs, { bin });
      sidecars.push(t);
      targets.push({ name, proc: t.proc, port: t.port, authority: t.host, runs: [], cpuUs: [] });
    }
    for (let r = 1; r <= rounds; r++) {
      const line: string[] = [];
      for (const t of targets) {
        const { result: res, cpuUs: cpu } = await h2loadCpu(t.port, t.authority, t.proc);
        if (res.status2xx !== res.requests) throw new Error(`${t.name}: ${res.status2xx} of ${res.requests} answered 2xx`);
        t.runs.push(res);
        t.cpuUs.push(cpu);
        line.push(`${t.name} ${res.rps} (${cpu.toFixed(1)} µs)`);
      }
      console.log(`round ${r}: ${line.join(', ')} req/s (proxy CPU per request)`);
    }
    const base = median(targets[0]?.runs.map((x) => x.rps) ?? []);
    const baseCpu = median(targets[0]?.cpuUs ?? []);
    const nginxRuns = targets[0]?.runs ?? [];
    console.log(table([['through', 'median req/s', 'vs nginx', 'vs nginx, same round (median)', 'runs', 'CPU µs/req (median)', 'nginx CPU / this CPU'],
      ...targets.map((t) => {
        const rps = median(t.runs.map((x) => x.rps));
        const cpu = median(t.cpuUs);
        // Each round's ratio: both measured within seconds, under the same load from elsewhere.
        const paired = median(t.runs.map((x, i) => x.rps / (nginxRuns[i]?.rps ?? NaN)));
        return [t.name, Math.round(rps), (rps / base).toFixed(3), paired.toFixed(3), t.runs.map((x) => x.rps).join(' '), cpu.toFixed(1), (baseCpu / cpu).toFixed(3)];
      })]));
  } finally {
    for (const s of sidecars) await s.proc.stop();
    for (const s of sidecars) await s.controlPlane.close();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  if (profDir !== undefined) {
    for (const [name] of builds) {
      const files = readdirSync(join(profDir, name)).filter((f) => f.endsWith('.cpuprofile')).sort();
      const last = files[files.length - 1];
      if (last === undefined) continue;
      console.log(`\n## ${name} sidecar CPU profile`);
      printProfile(summarizeProfile(join(profDir, name, last), 30));
    }
  }
}

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopAll().finally(() => process.exit(130)));

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
