/**
 * Micro-benchmark of pick() — a printout, not an assertion (timings depend on the machine
 * and its load): ns per pick for each policy over 10 hosts, plus hashKey and the build
 * costs of the hand-rolled structures (the ring's radix sort, the Maglev table). Run:
 * `node --test dist/test/proxy/lb/bench.test.js`; the numbers are the `#` lines.
 *
 * It also counts garbage collections during the timed loops: pick() allocates nothing,
 * so a loop of picks should trigger none.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { PerformanceObserver } from 'node:perf_hooks';
import { hashKey } from '../../../src/proxy/upstream/lb/hash.js';
import { buildMaglevTable } from '../../../src/proxy/upstream/lb/maglev.js';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../../src/proxy/upstream/lb/registry.js';
import { buildRing } from '../../../src/proxy/upstream/lb/ring-hash.js';
import type { LbConfig, PickContext, Picker } from '../../../src/proxy/upstream/lb/types.js';
import { build, hosts } from './fixtures.js';

const PICKS = 1_000_000;
const WARMUP = 100_000;

/** Key hashes the loops rotate through, so that ring lookups do not hit one cached path. */
const KEY_HASHES = Float64Array.from({ length: 4096 }, (_, i) => hashKey(`session-${i}`));

/** Picks n times; with `keyed`, ctx.hash takes the next of KEY_HASHES before each pick. */
function run(picker: Picker, ctx: PickContext, n: number, keyed: boolean): number {
  let sink = 0;
  for (let i = 0; i < n; i++) {
    if (keyed) ctx.hash = KEY_HASHES[i & 4095] as number;
    sink += picker.pick(ctx)?.port ?? 0;
  }
  return sink;
}

/** ns per pick over PICKS picks, after a warm-up. */
function nsPerPick(picker: Picker, keyed: boolean): number {
  const ctx: PickContext = { hash: undefined };
  run(picker, ctx, WARMUP, keyed);
  const start = process.hrtime.bigint();
  const sink = run(picker, ctx, PICKS, keyed);
  const ns = Number(process.hrtime.bigint() - start) / PICKS;
  assert.ok(sink > 0);
  return ns;
}

/** Number of GCs the observer saw; GC entries are delivered asynchronously, so await a turn. */
async function gcsDuring(fn: () => void): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => (count += list.getEntries().length));
  observer.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  return count;
}

function ms(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

describe('load balancer micro-benchmark (10 hosts; printout only)', { timeout: 60_000 }, () => {
  const registry = new LoadBalancerRegistry();
  registerBuiltinLoadBalancers(registry);
  const equal = hosts(10);
  const weighted = hosts(10).map((h, i) => ({ ...h, weight: i + 1 }));
  const twoLocalities = hosts(10).map((h, i) => ({ ...h, locality: i < 5 ? 'r/a/' : 'r/b/', localityWeight: i < 5 ? 80 : 20 }));
  const twoPriorities = hosts(10).map((h, i) => ({ ...h, priority: i < 5 ? 0 : 1, healthy: i !== 0 && i !== 1 }));
  const cases: readonly [string, typeof equal, LbConfig][] = [
    ['equal weights', equal, {}],
    ['weights 1..10', weighted, {}],
    ['2 localities 80/20', twoLocalities, { localityWeighted: true }],
    ['2 priorities, P0 60% healthy', twoPriorities, {}],
  ];

  for (const name of registry.names()) {
    it(name, async (t: TestContext) => {
      const lb = registry.create(name);
      assert.ok(lb !== undefined);
      const lines: string[] = [];
      const hashed = name === 'RING_HASH' || name === 'MAGLEV';
      for (const [label, list, config] of cases) {
        const picker = build(lb, list, config);
        lines.push(`${label} ${nsPerPick(picker, hashed).toFixed(1)}`);
      }
      const picker = build(lb, equal);
      if (hashed) lines.push(`no key (random hash) ${nsPerPick(picker, false).toFixed(1)}`);
      const gcs = await gcsDuring(() => run(picker, { hash: undefined }, PICKS, hashed));
      t.diagnostic(`${name} ns/pick: ${lines.join('; ')}; GCs during 1M picks: ${gcs}`);
    });
  }

  it('hashKey and build costs', async (t: TestContext) => {
    let sink = 0;
    const keys = Array.from({ length: 1000 }, (_, i) => `session-${i}-abcdef`);
    for (let i = 0; i < 100_000; i++) sink += hashKey(keys[i % 1000] as string);
    let hashNs = 0;
    const gcs = await gcsDuring(() => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 1_000_000; i++) sink += hashKey(keys[i % 1000] as string);
      hashNs = Number(process.hrtime.bigint() - start) / 1e6;
    });
    assert.ok(sink > 0);
    const ring1k = ms(() => buildRing(equal, {}));
    const ring1m = ms(() => buildRing(equal, { minimumRingSize: 1 << 20 }));
    const maglev = ms(() => buildMaglevTable(equal, {}));
    t.diagnostic(
      `hashKey (18-char key) ${hashNs.toFixed(1)} ns, GCs during 1M: ${gcs}; build: ring 1,030 entries ${ring1k.toFixed(2)} ms, ` +
        `ring 1,048,580 entries ${ring1m.toFixed(0)} ms (xxHash64 + radix sort), Maglev 65537 slots ${maglev.toFixed(2)} ms`,
    );
  });
});
