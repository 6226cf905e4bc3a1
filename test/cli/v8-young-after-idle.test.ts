/**
 * The proxy's young generation after an idle spell (src/cli/v8-flags.ts,
 * allowYoungGenerationGrowth). In a file of its own: it waits 10 s, and runs beside the
 * other files instead of after the other V8 flag tests.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers.js';
import { requestLikeLoad, runFresh } from './fresh-node.js';

/** Two loads and a 10 s idle spell in a fresh node. */
const IDLE_TIMEOUT_MS = 50_000;

/**
 * In a fresh node, as a proxy: load (the young generation grows), an idle spell of
 * `idleMs`, then the same load again. Prints the smallest young generation any
 * young-generation collection of the second load saw, and its size at the end (KiB).
 */
function youngAfterIdle(idleMs: number): Promise<{ smallest: number; end: number }> {
  const module = join(ROOT, 'dist/src/cli/v8-flags.js');
  const script = `
    const { allowYoungGenerationGrowth, applyV8Flags } = await import(${JSON.stringify(module)});
    applyV8Flags(['proxy']);
    const { getHeapSpaceStatistics } = await import('node:v8');
    const { PerformanceObserver, constants } = await import('node:perf_hooks');
    const young = () => Math.round(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1024);
    const kept = [];
    for (let i = 0; i < 500_000; i++) kept.push({ i, s: 'x' + i, a: [i] });
    allowYoungGenerationGrowth();
    { ${requestLikeLoad(200, 100_000, 5_000)} }
    await new Promise((resolve) => setTimeout(resolve, ${idleMs}));
    let smallest = Infinity;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) smallest = Math.min(smallest, young());
    }).observe({ entryTypes: ['gc'] });
    { ${requestLikeLoad(200, 100_000, 5_000)} }
    await new Promise((resolve) => setImmediate(resolve));
    console.log(JSON.stringify({ smallest, end: young(), kept: kept.length }));`;
  return runFresh(script, [], IDLE_TIMEOUT_MS).then((stdout) => JSON.parse(stdout) as { smallest: number; end: number });
}

describe('the young generation of a proxy back from idle', { timeout: IDLE_TIMEOUT_MS }, () => {
  // V8 shrinks the young generation at the first collection after an idle spell (its
  // allocation rate over the last 5 s is low); held at its size after that, a sidecar
  // served every later load at five times the scavenges.
  it('grows it back to the loaded size when load returns after an idle spell shrank it', async () => {
    const { smallest, end } = await youngAfterIdle(10_000);
    assert.ok(smallest < 12_288, `the idle spell did not shrink the young generation (smallest ${smallest} KiB): nothing to grow back`);
    assert.ok(end >= 12_288 && end <= 24_576, `young generation after the second load: ${end} KiB (smallest ${smallest} KiB)`);
  });
});
