/**
 * V8 settings for the `trellis proxy` process, set by the executable (bin.ts) before any
 * other module is loaded: flags that size the heap act only while it is still small.
 *
 * The young generation: two semi-spaces. V8 starts each at 1 MiB and doubles them, up to
 * 16 MiB, each time as many bytes as they hold have survived scavenges since they last
 * grew. Loading the xDS protos and the first configuration makes mostly long-lived
 * objects, so start-up alone grows them to 8 or 16 MiB, and they stay resident: up to a
 * third of an idle proxy's memory. So the proxy starts with them held at 1 MiB:
 * `--max-semi-space-size` has no effect once the heap exists, but V8 reads the growth
 * factor each time it grows, and 1 keeps the start size.
 *
 * Under load, though, 1 MiB is too little: the request path allocates about 9 KiB per
 * request (heads, header lists, buffers, the exchange), so at 10,000 requests/s a 1 MiB
 * semi-space is scavenged a hundred times a second, and a CPU profile put 10 % of the
 * proxy's busy time in the collector (against 1.5 % with V8's default sizing), which cost
 * about 8 % of the throughput at 50 connections. Once the proxy serves
 * (`allowYoungGenerationGrowth`), load grows the semi-spaces to 8 MiB, no further, and
 * back to 8 MiB when V8 has shrunk them after an idle spell: measured, a scavenge every
 * ~700 requests and 86–88 MiB of RSS under load against 108 MiB with V8's default 16 MiB
 * (docs/proxy.md "Memory"). An idle proxy never grows them.
 *
 * The optimizing compiler (TurboFan) is off until the proxy serves load (`--no-opt`,
 * then `--opt` in allowOptimizationUnderLoad). Start-up code runs once or a few times:
 * loading modules, decoding and compiling the configuration. Optimizing what of it gets
 * warm bought no time worth having, but TurboFan's own machine code is some 3 MiB of the
 * node binary's pages, which stayed resident in every idle sidecar (with its compile
 * zones, about 4 MiB of RSS in all). Under load, hot code is optimized as usual; an idle
 * proxy never pages the compiler in.
 *
 * Once load wakes the compiler, code tiers up sooner than V8's defaults let it
 * (TIER_UP_FLAGS): an eighth of the interrupt budget, and 50 calls instead of 500 after
 * a function's inline caches last changed. Keep-alive load makes the request path hot in
 * a fraction of a second either way; what the defaults left cold is the code a new
 * connection runs once (socket construction, the first read, close and destroy). Under a
 * burst of 1,000 new connections that code ran unoptimized through two or three bursts,
 * and the second and third bursts took 75–176 ms at p99; with these flags, 36–64 ms
 * (same-machine A/B, five runs; docs/proxy.md). Set at start-up they would cost idle
 * memory (about 4 MiB: more start-up code gets baseline-compiled), so they wait for load
 * as `--opt` does.
 *
 * A user who sizes the young generation (`--max-semi-space-size` or
 * `--semi-space-growth-factor` on the node command line, or in NODE_OPTIONS) gets theirs,
 * and one who sets `--opt`/`--turbofan` (or their `--no-` forms) gets that.
 */
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Flags that, given by the user, mean the young generation is sized already (V8 takes `-` or `_`). */
const YOUNG_GENERATION_FLAGS = /--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/;
/** Flags that, given by the user, choose the optimizing compiler's setting. */
const OPTIMIZER_FLAGS = /--(no[-_])?(opt|turbofan)(?![\w-])/;
/** Sooner tier-up once the proxy serves load (see the module comment); each unless the user set it. */
const TIER_UP_FLAGS: readonly { readonly flag: string; readonly given: RegExp }[] = [
  { flag: '--interrupt-budget=8192', given: /--interrupt[-_]budget=/ },
  { flag: '--minimum-invocations-after-ic-update=50', given: /--minimum[-_]invocations[-_]after[-_]ic[-_]update=/ },
];

/** The tier-up flags to set when load wakes the compiler, given node's flags and NODE_OPTIONS. */
export function tierUpFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, nodeOptions ?? ''];
  return TIER_UP_FLAGS.filter((t) => !given.some((flag) => t.given.test(flag))).map((t) => t.flag);
}

/**
 * The V8 flags `trellis <argv>` sets in its own process, given node's flags (`execArgv`)
 * and NODE_OPTIONS: the young-generation cap and no optimizing compiler for `proxy`
 * (each unless the user set it), nothing for other commands.
 */
export function v8FlagsFor(argv: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  if (argv[0] !== 'proxy') return [];
  const given = [...execArgv, nodeOptions ?? ''];
  const flags: string[] = [];
  if (!given.some((flag) => YOUNG_GENERATION_FLAGS.test(flag))) flags.push('--semi-space-growth-factor=1');
  if (!given.some((flag) => OPTIMIZER_FLAGS.test(flag))) flags.push(NO_OPT);
  return flags;
}

const NO_OPT = '--no-opt';

/** Whether this process holds the young generation at its start size (applyV8Flags did). */
let held = false;
/** Whether this process runs without the optimizing compiler until allowOptimization (applyV8Flags did). */
let optimizationHeld = false;

/** Sets `v8FlagsFor(argv, ...)` in this process; call before importing anything that allocates much. */
export function applyV8Flags(argv: readonly string[]): void {
  for (const flag of v8FlagsFor(argv, process.execArgv, process.env.NODE_OPTIONS)) {
    setFlagsFromString(flag);
    if (flag === NO_OPT) optimizationHeld = true;
    else held = true;
  }
}

/**
 * Two scavenges this close together: the proxy is serving requests (at 1 MiB semi-spaces,
 * about 100 requests fill one). An idle proxy scavenges minutes apart, if at all.
 */
const LOAD_SCAVENGE_GAP_MS = 1_000;

/**
 * Turns the optimizing compiler back on, in a process where applyV8Flags turned it off,
 * as soon as the proxy is under load: two young-generation collections less than
 * LOAD_SCAVENGE_GAP_MS apart. Not at once when start-up is over, because start-up made
 * its decoding and compiling code hot, and V8 would optimize it on its next call, paging
 * the compiler in for code that then runs once per configuration push. V8 reads the flag
 * each time code gets hot, so from then on hot code is optimized as usual. Nothing
 * happens in a process where the compiler was not held.
 */
export function allowOptimizationUnderLoad(): void {
  if (!optimizationHeld) return;
  optimizationHeld = false;
  onScavenges((underLoad) => {
    if (!underLoad) return false;
    for (const flag of tierUpFlags(process.execArgv, process.env.NODE_OPTIONS)) setFlagsFromString(flag);
    setFlagsFromString('--opt');
    return true;
  });
}

/**
 * Calls `each` after every young-generation collection V8 reports, with whether it came
 * less than LOAD_SCAVENGE_GAP_MS after the one before (the proxy is under load), until
 * `each` returns true.
 */
function onScavenges(each: (underLoad: boolean) => boolean): void {
  let lastScavengeMs = -Infinity;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MINOR) continue;
      const underLoad = entry.startTime - lastScavengeMs < LOAD_SCAVENGE_GAP_MS;
      lastScavengeMs = entry.startTime;
      if (each(underLoad)) {
        observer.disconnect();
        return;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** The semi-space size a loaded proxy works with; V8's start size (1 MiB on 64-bit) times LOADED_GROWTH. */
const LOADED_SEMI_SPACE_BYTES = 8 * 1024 * 1024;
/** The young generation's size (V8's `new_space` size: both semi-spaces) at LOADED_SEMI_SPACE_BYTES. */
const LOADED_YOUNG_BYTES = 2 * LOADED_SEMI_SPACE_BYTES;
const LOADED_GROWTH = 8;

/**
 * Close enough to the loaded size to stop growing. V8 shrinks the young generation to
 * twice what is alive in it (any multiple of a page), and grows it by a whole factor,
 * so one step lands near the loaded size, not on it; a second step of 2 from just below
 * would overshoot by more than this undershoots.
 */
const LOADED_ENOUGH = 0.75;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Lets the young generation held by applyV8Flags grow to LOADED_SEMI_SPACE_BYTES per
 * semi-space when load makes V8 want it bigger, and holds it there; again each time it has
 * shrunk. V8 grows it in one step (current size × the growth factor); the next growth
 * would need as many bytes of survivors again, so resetting the factor to 1 after the
 * first collection that shows the new size is in time.
 *
 * It shrinks: a collection after an idle spell (V8's memory reducer, or any full
 * collection at a low allocation rate) takes the semi-spaces back to their start size.
 * Held at factor 1 from then on, a sidecar that had been idle for 15 s served its next
 * load with small semi-spaces for good: five times the scavenges, and 2–4 % less
 * throughput at 50 connections in a same-time A/B. So the observer stays: when
 * young-generation collections come close together (load) while it is below the loaded
 * size, the factor is set to take it back there in one step. Nothing happens in a
 * process whose young generation is not held.
 */
export function allowYoungGenerationGrowth(): void {
  if (!held) return;
  held = false;
  setGrowthTowardsLoaded();
  let growing = true;
  const loaded = (): boolean => youngGenerationBytes() >= LOADED_ENOUGH * LOADED_YOUNG_BYTES;
  onScavenges((underLoad) => {
    if (growing) {
      if (loaded()) {
        setFlagsFromString('--semi-space-growth-factor=1');
        growing = false;
      }
    } else if (underLoad && !loaded()) {
      setGrowthTowardsLoaded();
      growing = true;
    }
    return false;
  });
}

/** Sets the growth factor that takes the young generation from its size now nearest to LOADED_YOUNG_BYTES in one step. */
function setGrowthTowardsLoaded(): void {
  const now = Math.max(1, youngGenerationBytes());
  const factor = Math.min(LOADED_GROWTH, Math.max(2, Math.round(LOADED_YOUNG_BYTES / now)));
  setFlagsFromString(`--semi-space-growth-factor=${factor}`);
}
