/**
 * The control plane end to end: a real ControlPlane on the generated directory and one
 * ADS client in a child process over gRPC on 127.0.0.1. Measures the client's initial
 * sync, then the time from rewriting a config file to the client holding an EDS response
 * with the change, split into the stages the change goes through.
 *
 * The split comes from wrapping two public methods of the running control plane
 * (`store.rescan`, `xds.push`) and subscribing to the store and the registry before
 * `start()`, so that the benchmark's listeners run before the control plane's own;
 * nothing in src/ is changed.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from '../src/control-plane/control-plane.js';
import { DEBOUNCE_QUIET_MS } from '../src/control-plane/debounce.js';
import { WATCH_SETTLE_MS } from '../src/control-plane/dir-watcher.js';
import { Logger } from '../src/core/log.js';
import { TYPE_URLS } from '../src/xds/type-urls.js';
import type { ClientNode, FromClient, ToClient } from './ads-client.js';
import { clusterOf, type GeneratedMesh } from './mesh-gen.js';
import { type MemoryReading, memory, sleep, type Summary, summarize, wallMs } from './stats.js';

export const CHANGES = 20;
const SYNC_TIMEOUT_MS = 60_000;
const CHANGE_TIMEOUT_MS = 15_000;
const CLIENT_ID = 'bench-grpc-client';

export interface PushResult {
  readonly startMs: number;
  readonly client: { readonly kind: string; readonly resources: Readonly<Record<string, number>>; readonly responses: number };
  /** Client's view: first request sent → last response it needed decoded. */
  readonly connectToSyncedMs: number;
  /** Until the control plane has the client's ACK of every type (server's view). */
  readonly connectToAckedMs: number;
  readonly changes: number;
  readonly stages: Readonly<Record<string, Summary>>;
  /** IPC round trip and estimated clock offset between the processes (ms). */
  readonly clockCheck: { readonly roundTripMs: number; readonly offsetMs: number };
}

/** Timestamps (wallMs) of the last change's passage through the control plane. */
interface Marks {
  rescanStart: number;
  rescanEnd: number;
  storePublished: number;
  registryUpdated: number;
  pushStart: number;
  pushEnd: number;
}

function instrument(cp: ControlPlane): Marks {
  const marks: Marks = { rescanStart: 0, rescanEnd: 0, storePublished: 0, registryUpdated: 0, pushStart: 0, pushEnd: 0 };
  const rescan = cp.store.rescan.bind(cp.store);
  cp.store.rescan = () => {
    const start = wallMs();
    const changed = rescan();
    if (changed) {
      marks.rescanStart = start;
      marks.rescanEnd = wallMs();
    }
    return changed;
  };
  cp.store.subscribe(() => (marks.storePublished = wallMs()));
  cp.registry.subscribe(() => (marks.registryUpdated = wallMs()));
  const push = cp.xds.push.bind(cp.xds);
  cp.xds.push = (mesh) => {
    marks.pushStart = wallMs();
    push(mesh);
    marks.pushEnd = wallMs();
  };
  return marks;
}

/** The child process and a way to wait for its next message of a type. */
class ClientProcess {
  readonly #child: ChildProcess;
  readonly #waiters = new Set<(m: FromClient) => boolean>();
  #exited = false;

  constructor() {
    const path = fileURLToPath(new URL('./ads-client.js', import.meta.url));
    // execArgv [] so the client does not inherit --expose-gc or a --cpu-prof of the parent.
    this.#child = fork(path, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: FromClient) => {
      if (m.type === 'error') process.stderr.write(`bench client: ${m.message}\n`);
      for (const w of [...this.#waiters]) if (w(m)) this.#waiters.delete(w);
    });
    this.#child.on('exit', (code, signal) => {
      this.#exited = true;
      const gone: FromClient = { type: 'error', message: `the bench client exited (${signal ?? code})` };
      for (const w of [...this.#waiters]) if (w(gone)) this.#waiters.delete(w);
    });
  }

  send(m: ToClient): void {
    this.#child.send(m);
  }

  next<T extends FromClient['type']>(type: T, timeoutMs: number, accept: (m: Extract<FromClient, { type: T }>) => boolean = () => true): Promise<Extract<FromClient, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`the bench client sent no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (m: FromClient): boolean => {
        if (m.type === 'error') {
          clearTimeout(timer);
          reject(new Error(m.message));
          return true;
        }
        if (m.type !== type || !accept(m as Extract<FromClient, { type: T }>)) return false;
        clearTimeout(timer);
        resolve(m as Extract<FromClient, { type: T }>);
        return true;
      };
      this.#waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.send({ type: 'close' });
    const timer = setTimeout(() => this.#child.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Round trips over IPC; the offset estimate shows whether cross-process times compare. */
async function clockCheck(client: ClientProcess): Promise<PushResult['clockCheck']> {
  let best = { roundTripMs: Infinity, offsetMs: 0 };
  for (let i = 0; i < 10; i++) {
    const sent = wallMs();
    client.send({ type: 'ping' });
    const { at } = await client.next('pong', 5_000);
    const back = wallMs();
    if (back - sent < best.roundTripMs) best = { roundTripMs: back - sent, offsetMs: at - (sent + back) / 2 };
  }
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { roundTripMs: r(best.roundTripMs), offsetMs: r(best.offsetMs) };
}

/** True once the client has ACKed the control plane's current version of every type and subscribes to every EDS cluster. */
function acked(cp: ControlPlane): boolean {
  const proxy = cp.xds.proxies().find((p) => p.node.id === CLIENT_ID);
  if (proxy === undefined || proxy.translation === undefined) return false;
  for (const type of [TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT]) {
    if (proxy.status.types[type]?.ackedVersion !== proxy.snapshot.types.get(type)?.version) return false;
  }
  return (proxy.status.types[TYPE_URLS.ENDPOINT]?.subscribed.length ?? 0) === proxy.translation.endpoints.length;
}

function whenAcked(cp: ControlPlane, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!acked(cp)) return;
      cp.xds.events.off('sync', check);
      clearTimeout(timer);
      resolve(wallMs());
    };
    const timer = setTimeout(() => {
      cp.xds.events.off('sync', check);
      reject(new Error(`the client did not ACK the current configuration within ${timeoutMs} ms`));
    }, timeoutMs);
    cp.xds.events.on('sync', check);
  });
}

const STAGES = {
  watch: `file write → rescan starts (fs.watch + ${WATCH_SETTLE_MS} ms settle)`,
  read: 'read + validate the changed file',
  registry: 'registry update (config + aggregate)',
  debounce: `debounce (${DEBOUNCE_QUIET_MS} ms quiet) + mesh rebuild`,
  push: 'translate + check + encode + send (1 proxy)',
  delivery: 'gRPC delivery + client decode',
  total: 'total: file write → client has the change',
  own: `control plane's own share (total − ${WATCH_SETTLE_MS} − ${DEBOUNCE_QUIET_MS} ms)`,
} as const;

export const STAGE_LABELS: Readonly<Record<string, string>> = STAGES;

async function oneChange(k: number, gen: GeneratedMesh, cp: ControlPlane, client: ClientProcess, marks: Marks): Promise<Record<keyof typeof STAGES, number>> {
  const service = (k * 37 + 11) % gen.shape.services;
  const endpoint = k % gen.shape.endpointsPerService;
  const address = `127.1.${k}.${endpoint + 1}`;
  const { path, text } = gen.prepareChange(service, endpoint, address);
  client.send({ type: 'watch', id: k, cluster: clusterOf(service), address });
  await sleep(20); // the watch reaches the client long before the push can
  const delivered = Promise.all([client.next('seen', CHANGE_TIMEOUT_MS, (m) => m.id === k), whenAcked(cp, CHANGE_TIMEOUT_MS)]);
  const written = wallMs();
  writeFileSync(path, text);
  const [{ at }] = await delivered;
  const total = at - written;
  return {
    watch: marks.rescanStart - written,
    read: marks.storePublished - marks.rescanStart,
    registry: marks.registryUpdated - marks.storePublished,
    debounce: marks.pushStart - marks.rescanEnd,
    push: marks.pushEnd - marks.pushStart,
    delivery: at - marks.pushEnd,
    total,
    own: total - WATCH_SETTLE_MS - DEBOUNCE_QUIET_MS,
  };
}

export async function benchPush(gen: GeneratedMesh, readings: MemoryReading[]): Promise<PushResult> {
  const cp = new ControlPlane({ configDir: gen.dir, xdsPort: 0, adminPort: 0, log: new Logger({ level: 'warn' }) });
  const marks = instrument(cp);
  const client = new ClientProcess();
  try {
    const started = performance.now();
    await cp.start();
    const startMs = performance.now() - started;
    readings.push(memory('control plane started, no proxy'));
    const clock = await clockCheck(client);
    const node: ClientNode = { id: CLIENT_ID, kind: 'grpc' };
    const syncing = Promise.all([client.next('synced', SYNC_TIMEOUT_MS), whenAcked(cp, SYNC_TIMEOUT_MS)]);
    const connectAt = wallMs();
    client.send({ type: 'connect', address: `127.0.0.1:${cp.xdsPort}`, node });
    const [synced, serverAcked] = await syncing;
    readings.push(memory('1 proxyless gRPC client connected and synced'));
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(STAGES).map((s) => [s, []]));
    for (let k = 0; k < CHANGES; k++) {
      const r = await oneChange(k, gen, cp, client, marks);
      for (const [stage, ms] of Object.entries(r)) samples[stage]?.push(ms);
    }
    readings.push(memory(`after ${CHANGES} changes pushed`));
    return {
      startMs: Math.round(startMs),
      client: { kind: node.kind, resources: synced.resources, responses: synced.responses },
      connectToSyncedMs: Math.round(synced.syncedAt - synced.startedAt),
      connectToAckedMs: Math.round(serverAcked - connectAt),
      changes: CHANGES,
      stages: Object.fromEntries(Object.entries(samples).map(([s, v]) => [s, summarize(v)])),
      clockCheck: clock,
    };
  } finally {
    await client.close();
    await cp.close();
  }
}
