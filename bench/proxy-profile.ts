/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and lists where the busy time went: the
 * functions with the most self time, and Trellis's own functions by inclusive time
 * (self + callees), as shares of the non-idle samples. `TRELLIS_BENCH_CPU_PROF=<dir> npm
 * run bench` prints this for the sidecar. Also runnable alone:
 *   node dist/bench/proxy-profile.js <file.cpuprofile> [count]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
}

export interface HotFunction {
  readonly name: string;
  readonly where: string;
  /** Share of the busy (non-idle) samples, in %. */
  readonly selfPercent: number;
  readonly inclusivePercent: number;
}

export interface ProfileSummary {
  /** Share of all samples the thread was idle (waiting in epoll), in %. */
  readonly idlePercent: number;
  /** Busy time by kind: Trellis's code, Node's JS internals, native (syscalls: socket writes), GC, other. */
  readonly byKind: Readonly<Record<string, number>>;
  readonly bySelf: readonly HotFunction[];
  /** Trellis functions (dist/src) by inclusive time. */
  readonly trellisInclusive: readonly HotFunction[];
}

function location(frame: ProfileNode['callFrame']): string {
  if (frame.url === '') return '(native)';
  const file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/dist\//, '');
  return `${file}:${frame.lineNumber + 1}`;
}

function kindOf(name: string, where: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (where.startsWith('src/')) return 'Trellis JS';
  if (where.startsWith('node:')) return 'Node JS internals';
  if (where === '(native)' && !name.startsWith('(')) return 'native (socket writes, reads, buffers)';
  return 'other (program, startup)';
}

const pct = (hits: number, total: number): number => (total === 0 ? 0 : Math.round((hits / total) * 1000) / 10);

export function summarizeProfile(file: string, count = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (profile.samples !== undefined) for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  else for (const n of profile.nodes) self.set(n.id, n.hitCount ?? 0);
  const inclusive = new Map<number, number>();
  const incl = (id: number): number => {
    const node = byId.get(id);
    let sum = self.get(id) ?? 0;
    for (const c of node?.children ?? []) sum += incl(c);
    inclusive.set(id, sum);
    return sum;
  };
  const root = profile.nodes[0];
  if (root !== undefined) incl(root.id);
  let idle = 0;
  let all = 0;
  const fns = new Map<string, { name: string; where: string; self: number; inclusive: number }>();
  const kinds: Record<string, number> = {};
  for (const n of profile.nodes) {
    const name = n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName;
    const h = self.get(n.id) ?? 0;
    all += h;
    if (name === '(idle)') {
      idle += h;
      continue;
    }
    const where = location(n.callFrame);
    const key = `${name} ${where}`;
    const e = fns.get(key) ?? { name, where, self: 0, inclusive: 0 };
    e.self += h;
    e.inclusive += inclusive.get(n.id) ?? 0;
    fns.set(key, e);
    const kind = kindOf(name, where);
    kinds[kind] = (kinds[kind] ?? 0) + h;
  }
  const busy = all - idle;
  const toHot = (e: { name: string; where: string; self: number; inclusive: number }): HotFunction =>
    ({ name: e.name, where: e.where, selfPercent: pct(e.self, busy), inclusivePercent: pct(e.inclusive, busy) });
  const list = [...fns.values()];
  return {
    idlePercent: pct(idle, all),
    byKind: Object.fromEntries(Object.entries(kinds).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, pct(v, busy)])),
    bySelf: list.sort((a, b) => b.self - a.self).slice(0, count).map(toHot),
    trellisInclusive: list.filter((e) => e.where.startsWith('src/')).sort((a, b) => b.inclusive - a.inclusive).slice(0, count).map(toHot),
  };
}

export function printProfile(s: ProfileSummary): void {
  console.log(`idle ${s.idlePercent}% of samples; busy time by kind: ${Object.entries(s.byKind).map(([k, v]) => `${k} ${v}%`).join(', ')}`);
  console.log('\nself time (% of busy):');
  for (const f of s.bySelf) console.log(`${String(f.selfPercent).padStart(5)}%  ${f.name}  ${f.where}`);
  console.log('\nTrellis functions, inclusive time (% of busy):');
  for (const f of s.trellisInclusive) console.log(`${String(f.inclusivePercent).padStart(5)}%  ${f.name}  ${f.where}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node dist/bench/proxy-profile.js <file.cpuprofile> [count]');
    process.exitCode = 2;
  } else {
    printProfile(summarizeProfile(file, Number(process.argv[3] ?? '25')));
  }
}
