/**
 * Many clients connecting at once: opens N connections to 127.0.0.1:<port> in one
 * event-loop turn, each sends one request (`GET /`, Host header given) as soon as it is
 * connected (written at once, queued by Node until then), and records the time from its `connect()` call to the first byte of the
 * response. Prints one JSON line (`StormResult`). Run as a child process, pinned to the
 * load core:
 *   node dist/bench/proxy-storm.js <port> <host> <connections> <timeoutMs>
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface StormResult {
  readonly connections: number;
  readonly ok: number;
  readonly failed: number;
  /** Per connection, ms from connect() to the response's first byte (successful ones). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** From the first connect() to the last response. */
  readonly totalMs: number;
  /** First error message seen, if any. */
  readonly error: string;
}

interface Client {
  readonly started: number;
  done: boolean;
}

const kClient = Symbol('storm.client');
type StormSocket = Socket & { [kClient]: Client };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
}

function run(port: number, host: string, n: number, timeoutMs: number): void {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'latin1');
  const times: number[] = [];
  let failed = 0;
  let error = '';
  let pending = n;
  const began = performance.now();
  const sockets: StormSocket[] = [];
  const settle = (s: StormSocket, ok: boolean): void => {
    if (s[kClient].done) return;
    s[kClient].done = true;
    if (ok) times.push(performance.now() - s[kClient].started);
    else failed++;
    s.destroy();
    if (--pending === 0) report();
  };
  const report = (): void => {
    clearTimeout(timer);
    const totalMs = performance.now() - began;
    for (const s of sockets) if (!s[kClient].done) {
      s[kClient].done = true;
      failed++;
      s.destroy();
      if (error === '') error = `no response within ${timeoutMs} ms`;
    }
    times.sort((a, b) => a - b);
    const r = (x: number): number => Math.round(x * 10) / 10;
    const result: StormResult = {
      connections: n, ok: times.length, failed,
      p50Ms: r(percentile(times, 0.5)), p99Ms: r(percentile(times, 0.99)), maxMs: r(times[times.length - 1] ?? 0),
      totalMs: r(totalMs), error,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  };
  const timer = setTimeout(report, timeoutMs);
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const s = connect({ port, host: '127.0.0.1', noDelay: true }) as StormSocket;
    s[kClient] = { started, done: false };
    sockets.push(s);
    s.write(request); // queued until connected: one callback less per connection
    s.on('data', function (this: StormSocket) {
      settle(this, true);
    });
    s.on('error', function (this: StormSocket, err: Error) {
      if (error === '') error = err.message;
      settle(this, false);
    });
    s.on('close', function (this: StormSocket) {
      settle(this, false);
    });
  }
}

run(Number(process.argv[2]), process.argv[3] ?? '127.0.0.1', Number(process.argv[4] ?? '1000'), Number(process.argv[5] ?? '15000'));
