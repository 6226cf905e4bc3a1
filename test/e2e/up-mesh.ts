/**
 * `trellis up` and the other commands as a user runs them, for the local-mesh tests: the
 * CLI binary as a child process, its output collected and waited on (never slept on), a
 * browser-like client for the product page (a cookie jar for signing in) and a load loop
 * of page loads that keeps every failure with what the page said.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { createServer } from 'node:net';
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { http, stars } from '../examples/bookinfo-fixture.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
/** The port of Istio's bookinfo-gateway (samples/bookinfo/networking/bookinfo-gateway.yaml). */
export const GATEWAY_PORT = 8080;

/**
 * A copy of examples/bookinfo in a new temporary directory, as a user copies it, without
 * the configuration applied to the repository's own (`mesh/applied/`: a developer who
 * walked the README's tasks there has some). Returns the copy; remove its parent after.
 */
export function copyBookinfo(): string {
  const from = join(ROOT, 'examples/bookinfo');
  const copy = join(mkdtempSync(join(tmpdir(), 'trellis-up-')), 'bookinfo');
  cpSync(from, copy, { recursive: true, filter: (src) => relative(from, src) !== `mesh${sep}applied` });
  return copy;
}

export interface Page {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly ms: number;
}

/** One HTTP request; resolves with the whole answer and how long it took. */
export async function fetchPage(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Page> {
  const start = performance.now();
  const reply = await http(url, options);
  return { ...reply, ms: performance.now() - start };
}

export { stars };

/** "Reviews served by: reviews-v2" → reviews-v2 (or '' when reviews failed). */
export function servedBy(html: string): string {
  return /Reviews served by: ([\w-]+)/.exec(html)?.[1] ?? '';
}

/** A user at the product page: signs in and out through the page's own form, keeps the cookie. */
export class Browser {
  readonly origin: string;
  #cookie = '';

  constructor(origin: string) {
    this.origin = origin;
  }

  async page(path = '/productpage'): Promise<Page> {
    return this.#keep(await fetchPage(this.origin + path, { headers: this.#cookie === '' ? {} : { cookie: this.#cookie } }));
  }

  /** The sign-in form (top right): user name and any password. */
  async signIn(user: string, password = 'any'): Promise<Page> {
    const body = new URLSearchParams({ username: user, passwd: password }).toString();
    return this.#keep(await fetchPage(`${this.origin}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', referer: `${this.origin}/productpage` }, body }));
  }

  async signOut(): Promise<Page> {
    return this.#keep(await fetchPage(`${this.origin}/logout`, { headers: this.#cookie === '' ? {} : { cookie: this.#cookie } }));
  }

  /** Keeps `session` as a browser would: set by a Set-Cookie, dropped when cleared. */
  #keep(page: Page): Page {
    const set = page.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : set === undefined ? [] : [set]) {
      const m = /^session=([^;]*)/.exec(c);
      if (m === null) continue;
      this.#cookie = m[1] === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c) ? '' : `session=${m[1] as string}`;
    }
    return page;
  }
}

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `trellis <args>` as a separate process, from the repository root, as the README runs it. */
export function trellis(args: readonly string[], env: Readonly<Record<string, string>>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Resolves once `port` on 127.0.0.1 can be bound: another mesh (a test of another
 * checkout on this machine) may still hold the gateway's fixed port for a few seconds.
 */
export async function portFree(port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return;
    if (performance.now() > deadline) throw new Error(`127.0.0.1:${port} stayed in use for ${timeoutMs} ms: another process holds the gateway's port`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A running `trellis up <dir>`, its output, and what it printed about itself. */
export class UpMesh {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  #out = '';
  readonly #events = new EventEmitter();

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    this.#events.setMaxListeners(0);
    this.exited = new Promise((resolve) => proc.once('exit', (code) => {
      resolve(code);
      this.#events.emit('output');
    }));
    const collect = (c: Buffer): void => {
      this.#out += c.toString();
      this.#events.emit('output');
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
  }

  /**
   * Starts `trellis up <dir> <flags>` and resolves once it says the mesh is up. With
   * `gateway` (Istio's bookinfo-gateway in the directory), first waits for its port.
   */
  static async start(dir: string, flags: readonly string[], { timeoutMs = 60_000, gateway = true } = {}): Promise<UpMesh> {
    if (gateway) await portFree(GATEWAY_PORT, 60_000);
    const mesh = new UpMesh(spawn(process.execPath, [BIN, 'up', dir, ...flags], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    await mesh.waitFor(/Press Ctrl-C to stop\./, timeoutMs, 'trellis up to be ready');
    return mesh;
  }

  get output(): string {
    return this.#out;
  }

  /** The product page URL it printed. */
  get gateway(): string {
    return (/^\s+gateway\s+(http:\/\/\S+)/m.exec(this.#out)?.[1]) ?? '';
  }

  /** The control plane's admin API it printed (the last start's). */
  get controlPlane(): string {
    const all = [...this.#out.matchAll(/control plane\s+(http:\/\/[\d.]+:\d+)\/debug\/registryz/g)];
    return all[all.length - 1]?.[1] ?? '';
  }

  /** The pid of `workload`'s application, from its `workload registered` log line. */
  appPid(workload: string): number {
    const m = new RegExp(`^${workload} \\| .*workload registered .*\\bpid=(\\d+)`, 'm').exec(this.#out);
    if (m === null) throw new Error(`no "workload registered" line with a pid for ${workload}`);
    return Number(m[1]);
  }

  /** How many lines of `workload`'s log match `pattern` so far. */
  count(workload: string, pattern: RegExp): number {
    let n = 0;
    for (const line of this.#out.split('\n')) if (line.startsWith(`${workload} | `) && pattern.test(line)) n++;
    return n;
  }

  /** Resolves when the output matches `pattern` (checked on every chunk, and at exit). */
  waitFor(pattern: RegExp | (() => boolean), timeoutMs: number, what: string): Promise<void> {
    const holds = typeof pattern === 'function' ? pattern : (): boolean => pattern.test(this.#out);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (holds()) return done(null);
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) done(new Error(`waiting for ${what}: trellis up exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.#out.slice(-4000)}`));
      };
      const done = (err: Error | null): void => {
        clearTimeout(timer);
        this.#events.off('output', check);
        if (err === null) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => done(new Error(`waiting for ${what}: not within ${timeoutMs} ms:\n${this.#out.slice(-4000)}`)), timeoutMs);
      this.#events.on('output', check);
      check();
    });
  }

  /** Ctrl-C; resolves with the exit status. */
  async interrupt(): Promise<number | null> {
    this.proc.kill('SIGINT');
    return this.exited;
  }

  /** For teardown: SIGKILL if it still runs (its workloads stop when their stdin closes). */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Product page loads, one after another on each of `concurrency` clients, until stopped. */
export class PageLoad {
  total = 0;
  /** `status: what the page said` of each failed load: not 200, or an error on the page. */
  readonly failures: string[] = [];
  /** Successful loads by the reviews instance that served them. */
  readonly servedBy = new Map<string, number>();
  readonly #url: string;
  readonly #agent: Agent;
  readonly #events = new EventEmitter();
  readonly #workers: Promise<void>[];
  #stopped = false;

  constructor(url: string, concurrency: number) {
    this.#url = url;
    this.#agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    this.#events.setMaxListeners(0);
    this.#workers = Array.from({ length: concurrency }, () => this.#worker());
  }

  /** Resolves once `n` page loads have finished since the start. */
  until(n: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.total < n) return;
        clearTimeout(timer);
        this.#events.off('page', check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#events.off('page', check);
        reject(new Error(`${n} page loads not within ${timeoutMs} ms (${this.describe()})`));
      }, timeoutMs);
      this.#events.on('page', check);
      check();
    });
  }

  describe(): string {
    const by = [...this.servedBy].sort().map(([w, n]) => `${w} ${n}`).join(', ');
    return `${this.total} page loads, ${this.failures.length} failed; reviews served by ${by}`;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#workers);
    this.#agent.destroy();
  }

  async #worker(): Promise<void> {
    while (!this.#stopped) {
      let failure: string | undefined;
      try {
        const page = await fetchPage(this.#url, { agent: this.#agent });
        const error = /Sorry, [^<]*|Ratings service is currently unavailable/.exec(page.body)?.[0];
        if (page.status !== 200 || error !== undefined) failure = `${page.status}: ${error ?? page.body.slice(0, 120)}`;
        else this.servedBy.set(servedBy(page.body), (this.servedBy.get(servedBy(page.body)) ?? 0) + 1);
      } catch (err) {
        failure = `no answer: ${(err as Error).message}`;
      }
      this.total++;
      if (failure !== undefined) this.failures.push(failure);
      this.#events.emit('page');
    }
  }
}
