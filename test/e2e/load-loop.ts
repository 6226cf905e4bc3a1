/**
 * Steady load through a sidecar for the failover and rolling-replacement tests: a number
 * of clients, each sending one request after another (keep-alive) until stopped. Every
 * reply is counted — in the whole run and in the phase its request was sent in — by the `x-backend` that
 * answered, and every failure (a status other than 200, or no response at all) is kept
 * with what the proxy said, so a test can print exactly what went wrong.
 *
 * Tests wait on the counts (`until`), re-checked at every reply, never on time.
 */
import { EventEmitter } from 'node:events';
import { Agent, request } from 'node:http';

/** Replies counted over some stretch of the run. */
export class Counts {
  total = 0;
  ok = 0;
  /** Successful replies by the `x-backend` that answered. */
  readonly byBackend = new Map<string, number>();
  /** `status body` (or the client's error) of each failure, in order. */
  readonly failures: string[] = [];

  get failed(): number {
    return this.total - this.ok;
  }

  served(backend: string): number {
    return this.byBackend.get(backend) ?? 0;
  }

  /** Successful replies as `name n (p%)` per backend, biggest first. */
  describe(): string {
    const parts = [...this.byBackend].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${n} (${((100 * n) / Math.max(1, this.total)).toFixed(1)}%)`);
    return `${this.total} requests, ${this.failed} failed${parts.length > 0 ? `; ${parts.join(', ')}` : ''}`;
  }

  add(backend: string | undefined, ok: boolean, failure: string | undefined): void {
    this.total++;
    if (ok) this.ok++;
    if (ok && backend !== undefined) this.byBackend.set(backend, (this.byBackend.get(backend) ?? 0) + 1);
    if (failure !== undefined) this.failures.push(failure);
  }
}

export interface LoadOptions {
  /** The sidecar's outbound port. */
  readonly port: number;
  /** `host:port` of the service, as the application asks for it. */
  readonly authority: string;
  readonly concurrency: number;
  /** Sent as a POST body when given (else GET). */
  readonly body?: string;
}

export class LoadLoop {
  readonly options: LoadOptions;
  /** Every reply since the start. */
  readonly all = new Counts();
  /** Replies to the requests sent since the last `phase()`. */
  current = new Counts();
  readonly #events = new EventEmitter();
  readonly #agent: Agent;
  #stopped = false;
  readonly #workers: Promise<void>[];

  constructor(options: LoadOptions) {
    this.options = options;
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
    this.#events.setMaxListeners(0);
    this.#workers = Array.from({ length: options.concurrency }, () => this.#worker());
  }

  /** Starts counting a new phase; returns its counts. */
  phase(): Counts {
    this.current = new Counts();
    return this.current;
  }

  /** Resolves when `done(counts of the current phase)` holds; checked at every reply. */
  until(done: (c: Counts) => boolean, timeoutMs: number, what: string): Promise<Counts> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(this.current)) return;
        clearTimeout(timer);
        this.#events.off('reply', check);
        resolve(this.current);
      };
      const timer = setTimeout(() => {
        this.#events.off('reply', check);
        const first = this.current.failures[0];
        reject(new Error(`${what}: not within ${timeoutMs} ms (${this.current.describe()}${first === undefined ? '' : `; first failure: ${first}`})`));
      }, timeoutMs);
      this.#events.on('reply', check);
      check();
    });
  }

  /** Starts a new phase and resolves with it once it has `n` replies. */
  next(n: number, timeoutMs: number, what: string): Promise<Counts> {
    this.phase();
    return this.until((c) => c.total >= n, timeoutMs, what);
  }

  /** Lets every client finish its request, then stops. */
  async stop(): Promise<Counts> {
    this.#stopped = true;
    await Promise.all(this.#workers);
    this.#agent.destroy();
    return this.all;
  }

  async #worker(): Promise<void> {
    while (!this.#stopped) {
      // A reply counts in the phase its request was sent in: a phase sees only what
      // happened after it began, not the answers to requests already on their way.
      const phase = this.current;
      const r = await this.#send();
      this.all.add(r.backend, r.failure === undefined, r.failure);
      phase.add(r.backend, r.failure === undefined, r.failure);
      this.#events.emit('reply');
    }
  }

  #send(): Promise<{ backend: string | undefined; failure: string | undefined }> {
    const { port, authority, body } = this.options;
    return new Promise((resolve) => {
      const method = body === undefined ? 'GET' : 'POST';
      const headers = body === undefined ? { host: authority } : { host: authority, 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
      const req = request({ host: '127.0.0.1', port, method, path: `http://${authority}/`, headers, agent: this.#agent, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const backend = res.headers['x-backend'] as string | undefined;
          const status = res.statusCode ?? 0;
          resolve({ backend, failure: status === 200 ? undefined : `${status} ${Buffer.concat(chunks).toString().slice(0, 120)}` });
        });
        res.on('error', (err) => resolve({ backend: undefined, failure: `response error: ${err.message}` }));
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (err) => resolve({ backend: undefined, failure: `request error: ${err.message}` }));
      req.end(body);
    });
  }
}
