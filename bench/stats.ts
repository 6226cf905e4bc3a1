/** Timing, summary statistics and memory readings for the benchmarks. */
import { performance } from 'node:perf_hooks';

/** Milliseconds on a clock that two processes of one machine share (epoch-based, sub-ms). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p90: number;
  readonly min: number;
  readonly max: number;
}

/** Nearest-rank percentiles, rounded to 0.1 ms. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { n: sorted.length, median: r(rank(0.5)), p90: r(rank(0.9)), min: r(sorted[0] as number), max: r(sorted[sorted.length - 1] as number) };
}

/** The median of `xs` (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

/** Runs `fn` and returns its result and duration in ms. */
export function timed<T>(fn: () => T): { readonly value: T; readonly ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

const gc = (globalThis as { gc?: () => void }).gc;

/** True when node runs with --expose-gc, so memory is read after a full collection. */
export const GC_EXPOSED = gc !== undefined;

/** Collects garbage (when exposed) so that a memory reading counts live objects only. */
export function collect(): void {
  gc?.();
  gc?.();
}

export interface MemoryReading {
  readonly stage: string;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  /** Memory outside the JS heap: Buffers (encoded xDS resources), the native gRPC parts. */
  readonly externalMb: number;
}

export function memory(stage: string): MemoryReading {
  collect();
  const m = process.memoryUsage();
  const mb = (bytes: number): number => Math.round((bytes / 1_048_576) * 10) / 10;
  return { stage, rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), externalMb: mb(m.external) };
}

/** A plain-text table: the first row is the header, numbers are right-aligned. */
export function table(rows: readonly (readonly (string | number)[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, String(cell).length)));
  const line = (row: readonly (string | number)[]): string =>
    row.map((cell, i) => (typeof cell === 'number' ? String(cell).padStart(widths[i] ?? 0) : String(cell).padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const [head, ...body] = rows;
  if (head === undefined) return '';
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function summaryRow(label: string, s: Summary): (string | number)[] {
  return [label, s.median, s.p90, s.max];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
