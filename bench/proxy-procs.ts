/**
 * Processes for the proxy benchmark: finding tools, starting them pinned to a core,
 * stopping them by PID, and reading their CPU time and memory from /proc (Linux).
 *
 * Every process started here is registered, so that `stopAll()` (called in a `finally`,
 * on SIGINT/SIGTERM and, synchronously, on exit) kills each of them, and the children
 * they forked (nginx workers), by PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { sleep } from './stats.js';

/** The cores of the perf notes: load generator and upstream on one, the proxy under test on the other. */
export const CORES = { load: 0, proxy: 1 } as const;
export type Core = (typeof CORES)[keyof typeof CORES];

const STOP_GRACE_MS = 3_000;
const TAIL_BYTES = 4_096;

/** The absolute path of a program on PATH, or undefined. */
export function which(program: string): string | undefined {
  try {
    const out = execFileSync('which', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out === '' ? undefined : out;
  } catch {
    return undefined;
  }
}

const TASKSET = which('taskset');

/** True when processes are pinned (taskset exists and there are at least two cores). */
export const PINNING = TASKSET !== undefined && availableParallelism() >= 2;

/** `cmd args` prefixed with `taskset -c <core>` when pinning is possible. */
export function pinned(core: Core, cmd: string, args: readonly string[]): [string, string[]] {
  return PINNING ? [TASKSET as string, ['-c', String(core), cmd, ...args]] : [cmd, [...args]];
}

/** Pins every thread of this process to a core (the orchestrator stays off the proxy's core). */
export function pinSelf(core: Core): void {
  if (!PINNING) return;
  execFileSync(TASKSET as string, ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** A started process; output is kept (stdout whole, stderr's tail) for error messages and parsing. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined = undefined;
  /** Descendants seen while running (nginx workers), killed too. */
  readonly descendants = new Set<number>();

  constructor(name: string, child: ChildProcess) {
    if (child.pid === undefined) throw new Error(`${name}: could not start`);
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-TAIL_BYTES)));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal === null ? null : 128);
        resolve(this.exitCode);
      });
      child.on('error', () => {
        this.exitCode = this.exitCode ?? 127;
        resolve(this.exitCode);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** This process and its live descendants (for CPU and RSS of a multi-process proxy). */
  tree(): number[] {
    for (const pid of descendantsOf(this.pid)) this.descendants.add(pid);
    return [this.pid, ...[...this.descendants].filter(alive)];
  }

  /** SIGTERM, then SIGKILL after a grace period; descendants get the same. */
  async stop(): Promise<void> {
    this.tree();
    if (this.running) {
      signal(this.pid, 'SIGTERM');
      const done = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      if (!done) signal(this.pid, 'SIGKILL');
      await Promise.race([this.exited, sleep(STOP_GRACE_MS)]);
    }
    this.killDescendants();
  }

  killDescendants(): void {
    for (const pid of this.descendants) if (alive(pid)) signal(pid, 'SIGKILL');
  }

  describe(): string {
    return `${this.name} (pid ${this.pid}${this.running ? '' : `, exited ${this.exitCode}`})${this.stderr.trim() === '' ? '' : `: ${this.stderr.trim().slice(-600)}`}`;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  let children: string;
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return out;
  }
  for (const c of children.split(' ')) {
    const n = Number(c);
    if (Number.isInteger(n) && n > 0) out.push(n, ...descendantsOf(n));
  }
  return out;
}

const started = new Set<Proc>();

export interface StartOptions {
  readonly core?: Core;
  readonly env?: NodeJS.ProcessEnv;
  /** Keep stdout (default true). */
  readonly stdout?: boolean;
}

/** Starts a program (pinned when a core is given) and registers it for cleanup. */
export function start(name: string, cmd: string, args: readonly string[], options: StartOptions = {}): Proc {
  const [file, argv] = options.core === undefined ? [cmd, [...args]] : pinned(options.core, cmd, args);
  const child = spawn(file, argv, { stdio: ['ignore', options.stdout === false ? 'ignore' : 'pipe', 'pipe'], env: options.env ?? process.env });
  const proc = new Proc(name, child);
  started.add(proc);
  void proc.exited.then(() => proc.tree());
  return proc;
}

/** Stops every process started and not yet stopped. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((p) => p.stop()));
  started.clear();
}

/** Last resort on exit: SIGKILL whatever is left, synchronously. */
export function killAllSync(): void {
  for (const p of started) {
    if (p.running) signal(p.pid, 'SIGKILL');
    p.killDescendants();
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; fine on an otherwise idle machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Retries `probe` every 100 ms until it returns true, the process exits, or the timeout. */
export async function waitUntil(proc: Proc, what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${what}: ${proc.describe()}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not ready within ${timeoutMs} ms: ${proc.describe()}`);
}

// ---- /proc readings ----

const CLOCK_TICK_US = 1_000_000 / clockTicks();

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

export interface CpuTime {
  readonly userUs: number;
  readonly systemUs: number;
}

export const NO_CPU_TIME: CpuTime = { userUs: 0, systemUs: 0 };

/** User plus kernel time (µs). */
export const busyUs = (t: CpuTime): number => t.userUs + t.systemUs;

/** User and kernel CPU time of a set of processes (all threads), in µs; 10 ms resolution. */
export function cpuTime(pids: readonly number[]): CpuTime {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);
      system += Number(f[12]);
    } catch {
      // exited
    }
  }
  return { userUs: user * CLOCK_TICK_US, systemUs: system * CLOCK_TICK_US };
}

/** Summed VmRSS of a set of processes, in MiB (shared pages of a master and its workers count twice). */
export function rssMb(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return Math.round((kb / 1024) * 10) / 10;
}

/** Samples the RSS of a process tree every 100 ms until stopped; returns the peak. */
export class RssSampler {
  readonly #proc: Proc;
  readonly #timer: NodeJS.Timeout;
  peakMb = 0;

  constructor(proc: Proc) {
    this.#proc = proc;
    this.sample();
    this.#timer = setInterval(() => this.sample(), 100);
  }

  sample(): void {
    this.peakMb = Math.max(this.peakMb, rssMb(this.#proc.tree()));
  }

  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peakMb;
  }
}

/** The kernel's listen-queue overflow counters (TcpExt ListenOverflows, ListenDrops). */
export function listenDrops(): { readonly overflows: number; readonly drops: number } {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = (lines[0] ?? '').split(' ');
    const values = (lines[1] ?? '').split(' ');
    const get = (n: string): number => Number(values[names.indexOf(n)] ?? 0);
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops') };
  } catch {
    return { overflows: 0, drops: 0 };
  }
}

export interface CoreTimes {
  /** user + nice + system, in µs: process time (ours and anyone else's). */
  readonly taskUs: number;
  /** Time the hypervisor gave this vCPU to someone else, in µs. */
  readonly stealUs: number;
  readonly idleUs: number;
  readonly totalUs: number;
}

/** One core's accumulated times from /proc/stat. */
export function coreTimes(core: Core): CoreTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `)) ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.split(/\s+/).slice(1).map(Number);
  const us = (ticks: number): number => ticks * CLOCK_TICK_US;
  return { taskUs: us(user + nice + system), stealUs: us(steal), idleUs: us(idle + iowait), totalUs: us(user + nice + system + idle + iowait + irq + softirq + steal) };
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}
