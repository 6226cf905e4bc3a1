/**
 * `npm run bench`: the control plane on 1,000 services × 10 endpoints. Prints a report
 * and writes the figures as JSON next to this file (`dist/bench/control-plane.json`).
 * A benchmark, not a test: it asserts nothing about the figures. Run with --expose-gc so
 * that memory is read after a full collection (timed steps never force one).
 */
import { cpus, totalmem, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchLoad, benchTranslation, CHANGE_RUNS, LOAD_RUNS, type Loaded, TRANSLATE_RUNS, type LoadResult, type TranslationResult } from './in-process.js';
import { GeneratedMesh } from './mesh-gen.js';
import { benchPush, type PushResult, STAGE_LABELS } from './push-latency.js';
import { GC_EXPOSED, type MemoryReading, memory, table, summaryRow } from './stats.js';

interface Report {
  readonly date: string;
  readonly command: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memoryGb: number; readonly node: string; readonly platform: string };
  readonly gcExposed: boolean;
  readonly mesh: GeneratedMesh['shape'];
  readonly load: LoadResult;
  readonly translation: readonly TranslationResult[];
  readonly push: PushResult;
  readonly memory: readonly MemoryReading[];
  readonly durationS: number;
}

function machine(): Report['machine'] {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

function printLoad(l: LoadResult): void {
  console.log(`\n## Load (${l.files} files, ${l.resources} resources; ms over ${LOAD_RUNS} runs, one-file change over ${CHANGE_RUNS})`);
  console.log(table([
    ['stage', 'median', 'p90', 'max'],
    summaryRow('read + validate every file (ConfigStore.rescan)', l.readValidateMs),
    summaryRow('registry build (config + aggregate)', l.registryMs),
    summaryRow('mesh build (buildMesh)', l.meshMs),
    summaryRow('rescan after one WorkloadEntry changed', l.rescanOneFileMs),
    summaryRow('registry update for that change', l.registryUpdateMs),
  ]));
}

function printTranslation(results: readonly TranslationResult[]): void {
  console.log(`\n## Full translation for one proxy (ms over ${TRANSLATE_RUNS} runs, fresh mesh each run)`);
  const rows: (string | number)[][] = [['node', 'listeners', 'routes', 'vhosts', 'clusters', 'CLAs', 'endpoints', 'LDS/RDS/CDS/EDS KiB']];
  for (const r of results) {
    const c = r.counts;
    rows.push([r.kind, c.listeners, c.routes, c.virtualHosts, c.clusters, c.endpoints, c.lbEndpoints, Object.values(c.encodedKb).join('/')]);
  }
  console.log(table(rows));
  console.log('');
  const times: (string | number)[][] = [['stage', 'median', 'p90', 'max']];
  for (const r of results) {
    times.push(summaryRow(`${r.kind}: translate()`, r.translateMs));
    times.push(summaryRow(`${r.kind}: consistencyProblems()`, r.consistencyMs));
    times.push(summaryRow(`${r.kind}: encodeTranslation() (cold)`, r.encodeMs));
    times.push(summaryRow(`${r.kind}: all three (one push, new mesh)`, r.totalMs));
    times.push(summaryRow(`${r.kind}: 2nd proxy translate() (warm)`, r.warmTranslateMs));
    times.push(summaryRow(`${r.kind}: 2nd proxy encode (warm)`, r.warmEncodeMs));
    times.push(summaryRow(`${r.kind}: 3rd proxy, other labels: translate()`, r.otherLabelsTranslateMs));
    times.push(summaryRow(`${r.kind}: 3rd proxy, other labels: encode`, r.otherLabelsEncodeMs));
  }
  console.log(table(times));
}

function printPush(p: PushResult): void {
  console.log('\n## Control plane over gRPC (1 proxyless gRPC client in a child process)');
  console.log(`start() until both servers listen: ${p.startMs} ms`);
  console.log(`client resources: ${Object.entries(p.client.resources).map(([t, n]) => `${t} ${n}`).join(', ')} (${p.client.responses} responses)`);
  console.log(`connect → fully synced (client view): ${p.connectToSyncedMs} ms; until every type is ACKed at the server: ${p.connectToAckedMs} ms`);
  console.log(`IPC clock check: round trip ${p.clockCheck.roundTripMs} ms, offset ${p.clockCheck.offsetMs} ms\n`);
  console.log(`Change one WorkloadEntry address → client has the EDS response with it (ms over ${p.changes} changes):`);
  console.log(table([['stage', 'median', 'p90', 'max'], ...Object.entries(p.stages).map(([s, v]) => summaryRow(STAGE_LABELS[s] ?? s, v))]));
}

function printMemory(readings: readonly MemoryReading[]): void {
  console.log(`\n## Memory (MiB, after ${GC_EXPOSED ? 'a forced full GC' : 'NO forced GC: run node with --expose-gc'})`);
  console.log(table([['stage', 'rss', 'heapUsed', 'external'], ...readings.map((m) => [m.stage, m.rssMb, m.heapUsedMb, m.externalMb])]));
}

/** Loads and reads memory while the store, registry and mesh are alive; returns only the resources. */
function loadStage(gen: GeneratedMesh, readings: MemoryReading[]): { load: LoadResult; resources: Loaded['resources'] } {
  const { result, loaded } = benchLoad(gen);
  readings.push(memory('after load + registry + mesh build (in-process)'));
  return { load: result, resources: loaded.resources };
}

/** The in-process benchmarks; nothing they load outlives this function. */
function inProcessStage(gen: GeneratedMesh, readings: MemoryReading[]): { load: LoadResult; translation: TranslationResult[] } {
  const { load, resources } = loadStage(gen, readings);
  printLoad(load);
  const translation = [benchTranslation(resources, 'grpc'), benchTranslation(resources, 'sidecar')];
  printTranslation(translation);
  return { load, translation };
}

async function main(): Promise<void> {
  const began = Date.now();
  const readings: MemoryReading[] = [memory('baseline: modules imported, nothing loaded')];
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
  try {
    const gen = new GeneratedMesh(dir);
    gen.writeAll();
    console.log(`# Trellis control-plane benchmark: ${gen.shape.services} services × ${gen.shape.endpointsPerService} endpoints, ${gen.files} files in ${dir}`);
    if (!GC_EXPOSED) console.log('warning: node runs without --expose-gc; memory figures include garbage');
    const { load, translation } = inProcessStage(gen, readings);
    readings.push(memory('in-process runs done, their objects dropped (protos stay loaded)'));
    const push = await benchPush(gen, readings);
    printPush(push);
    printMemory(readings);
    const report: Report = {
      date: new Date().toISOString(),
      command: 'npm run bench',
      machine: machine(),
      gcExposed: GC_EXPOSED,
      mesh: gen.shape,
      load,
      translation,
      push,
      memory: readings,
      durationS: Math.round((Date.now() - began) / 1000),
    };
    const out = fileURLToPath(new URL('./control-plane.json', import.meta.url));
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nmachine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGb} GB, node ${report.machine.node}; ${report.durationS} s; JSON in ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
