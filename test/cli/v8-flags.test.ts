/** The V8 flags the `trellis` executable sets for itself (src/cli/v8-flags.ts). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tierUpFlags, v8FlagsFor } from '../../src/cli/v8-flags.js';
import { ROOT } from '../helpers.js';
import { requestLikeLoad, runFresh } from './fresh-node.js';

/** The whole suite: several fresh nodes, one or two at a time (the runner gives a file 60 s). */
const SUITE_TIMEOUT_MS = 50_000;


/**
 * In a fresh node: apply the flags for `argv`, then allocate 40 MB of objects that stay
 * alive (as loading the xDS protos does) and print the young generation's size in KiB.
 */
function youngGenerationKiB(argv: readonly string[], loaded = false): Promise<number> {
  const module = join(ROOT, 'dist/src/cli/v8-flags.js');
  // Then, when `loaded`: the proxy is serving (allowYoungGenerationGrowth), and 2 GB of
  // short-lived objects go through, in event-loop turns as requests do, a few thousand
  // staying alive at a time (requests in flight).
  const script = `
    const { allowYoungGenerationGrowth, applyV8Flags } = await import(${JSON.stringify(module)});
    applyV8Flags(${JSON.stringify(argv)});
    const { getHeapSpaceStatistics } = await import('node:v8');
    const kept = [];
    for (let i = 0; i < 500_000; i++) kept.push({ i, s: 'x' + i, a: [i] });
    if (${loaded}) {
      allowYoungGenerationGrowth();
      ${requestLikeLoad(200, 100_000, 5_000)}
    }
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(Math.round(young.space_size / 1024), kept.length);`;
  return runFresh(script).then((stdout) => Number(stdout.split(' ')[0]));
}

/**
 * In a fresh node: apply the flags for `argv`, make a function hot, and say whether V8
 * optimized it (`before`); then, start-up over (allowOptimizationUnderLoad), the same
 * while idle (`idle`), and after short-lived objects go through as requests make them
 * (`loaded`). Then `tierUpCalls`: how many calls of a function first called under load
 * (straight-line code, as a new connection's runs) V8 takes to ask for its optimization.
 */
function optimizedWhen(argv: readonly string[]): Promise<Optimized> {
  const module = join(ROOT, 'dist/src/cli/v8-flags.js');
  // %GetOptimizationStatus bit 4: the function runs optimized code.
  const script = `
    const { allowOptimizationUnderLoad, applyV8Flags } = await import(${JSON.stringify(module)});
    applyV8Flags(${JSON.stringify(argv)});
    function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
    const arr = Array.from({ length: 1000 }, (_, i) => i);
    const warm = () => { for (let i = 0; i < 20_000; i++) hot(arr); return (%GetOptimizationStatus(hot) & 16) !== 0; };
    const before = warm();
    allowOptimizationUnderLoad();
    await new Promise((resolve) => setImmediate(resolve));
    const idle = warm();
    ${requestLikeLoad(50, 20_000, 1_000)}
    const loaded = warm();
    // Bits 16 (optimized), 256/512 (marked for optimization), 1024 (being optimized).
    function once(o) { const a = o.x + o.y; const b = a * 2 + o.z; return { a, b, c: String(b).length + a }; }
    let tierUpCalls = 0;
    while (tierUpCalls < 5_000 && (%GetOptimizationStatus(once) & (16 | 256 | 512 | 1024)) === 0) once({ x: tierUpCalls, y: 2, z: 3 }), tierUpCalls++;
    console.log(JSON.stringify({ before, idle, loaded, tierUpCalls }));`;
  return runFresh(script, ['--allow-natives-syntax']).then((stdout) => JSON.parse(stdout) as Optimized);
}

/** optimizedWhen for a proxy and for another command, run once for the tests that read it. */
let optimizationRun: Promise<[Optimized, Optimized]> | undefined;
function optimization(): Promise<[Optimized, Optimized]> {
  optimizationRun ??= Promise.all([optimizedWhen(['proxy']), optimizedWhen(['control-plane'])]);
  return optimizationRun;
}

interface Optimized {
  readonly before: boolean;
  readonly idle: boolean;
  readonly loaded: boolean;
  readonly tierUpCalls: number;
}

describe('V8 flags of the trellis executable', { timeout: SUITE_TIMEOUT_MS }, () => {
  it('caps the young generation for the proxy only', () => {
    assert.deepEqual(v8FlagsFor(['proxy', '--xds', '127.0.0.1:15010'], [], undefined), ['--semi-space-growth-factor=1', '--no-opt']);
    assert.deepEqual(v8FlagsFor(['control-plane'], [], undefined), []);
    assert.deepEqual(v8FlagsFor(['analyze', 'proxy'], [], undefined), []);
    assert.deepEqual(v8FlagsFor([], [], undefined), []);
  });

  it('leaves the young generation alone when the user sizes it, on the node command line or in NODE_OPTIONS', () => {
    assert.deepEqual(v8FlagsFor(['proxy'], ['--max-semi-space-size=16'], undefined), ['--no-opt']);
    assert.deepEqual(v8FlagsFor(['proxy'], ['--semi_space_growth_factor=2'], undefined), ['--no-opt']);
    assert.deepEqual(v8FlagsFor(['proxy'], [], '--enable-source-maps --max-semi-space-size=8'), ['--no-opt']);
    assert.deepEqual(v8FlagsFor(['proxy'], ['--enable-source-maps'], '--max-old-space-size=256'), ['--semi-space-growth-factor=1', '--no-opt']);
  });

  it('leaves the optimizing compiler alone when the user sets it', () => {
    assert.deepEqual(v8FlagsFor(['proxy'], ['--no-opt'], undefined), ['--semi-space-growth-factor=1']);
    assert.deepEqual(v8FlagsFor(['proxy'], ['--turbofan'], undefined), ['--semi-space-growth-factor=1']);
    assert.deepEqual(v8FlagsFor(['proxy'], [], '--no_turbofan'), ['--semi-space-growth-factor=1']);
    assert.deepEqual(v8FlagsFor(['proxy'], ['--optimize-for-size'], undefined), ['--semi-space-growth-factor=1', '--no-opt']);
  });

  // What allowOptimizationUnderLoad relies on: this Node's V8 reads --opt each time code gets hot.
  it('optimizes no code in the proxy process during start-up or while idle, and hot code under load', async () => {
    const [proxy, other] = await optimization();
    assert.deepEqual({ ...proxy, tierUpCalls: undefined }, { before: false, idle: false, loaded: true, tierUpCalls: undefined });
    assert.deepEqual({ ...other, tierUpCalls: undefined }, { before: true, idle: true, loaded: true, tierUpCalls: undefined });
  });

  // The tier-up flags: code a new connection runs once gets optimized within a burst.
  it('tiers up code first run under load several times sooner in the proxy than V8 does by default', async () => {
    const [proxy, other] = await optimization();
    assert.ok(proxy.tierUpCalls <= 300, `proxy: optimization asked for after ${proxy.tierUpCalls} calls`);
    assert.ok(other.tierUpCalls >= 3 * proxy.tierUpCalls, `control-plane: after ${other.tierUpCalls} calls, proxy ${proxy.tierUpCalls}`);
  });

  it('leaves the tier-up settings alone when the user sets them', () => {
    assert.deepEqual(tierUpFlags([], undefined), ['--interrupt-budget=8192', '--minimum-invocations-after-ic-update=50']);
    assert.deepEqual(tierUpFlags(['--interrupt_budget=100000'], undefined), ['--minimum-invocations-after-ic-update=50']);
    assert.deepEqual(tierUpFlags([], '--minimum-invocations-after-ic-update=500 --interrupt-budget=70000'), []);
  });

  // What the cap relies on: this Node's V8 still reads the growth factor after start-up.
  it('keeps the young generation at its start size in the proxy process, and not in others', async () => {
    const [proxy, other] = await Promise.all([youngGenerationKiB(['proxy']), youngGenerationKiB(['control-plane'])]);
    assert.ok(proxy <= 2048, `proxy: young generation ${proxy} KiB`);
    assert.ok(other > proxy, `control-plane: young generation ${other} KiB, proxy ${proxy} KiB`);
  });

  it('lets a serving proxy grow it once, to two 8 MiB semi-spaces, and no further', async () => {
    const [loaded, other] = await Promise.all([youngGenerationKiB(['proxy'], true), youngGenerationKiB(['control-plane'], true)]);
    assert.ok(loaded > 2048 && loaded <= 16_384, `loaded proxy: young generation ${loaded} KiB`);
    assert.ok(other > 16_384, `control-plane under the same load: young generation ${other} KiB`);
  });
});

