/**
 * V8 settings for the `trellis proxy` process, set by the executable (bin.ts) before any
 * other module is loaded: flags that size the heap act only while it is still small.
 *
 * The young generation. V8 starts it at 2 MiB and doubles it, up to 32 MiB, each time as
 * many bytes as it holds have survived scavenges since it last grew. Loading the xDS
 * protos and the first configuration makes mostly long-lived objects, so start-up alone
 * grows it to 16 or 32 MiB, load to 32, and it stays resident: up to a third of the
 * proxy's memory. The
 * request path keeps nothing past the response, so a small young generation only means
 * more frequent, shorter scavenges: about 2 % more instructions per request in a valgrind
 * count, no difference in CPU time that a busy machine shows (docs/proxy.md "Memory").
 * `--max-semi-space-size` has no effect once the heap exists, but V8 reads its growth
 * factor each time it grows: 1 keeps the young generation at its start size, as
 * `node --max-semi-space-size=1` would.
 *
 * A user who sizes the young generation (`--max-semi-space-size` or
 * `--semi-space-growth-factor` on the node command line, or in NODE_OPTIONS) gets theirs.
 */
import { setFlagsFromString } from 'node:v8';

/** Flags that, given by the user, mean the young generation is sized already (V8 takes `-` or `_`). */
const YOUNG_GENERATION_FLAGS = /--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/;

/**
 * The V8 flags `trellis <argv>` sets in its own process, given node's flags (`execArgv`)
 * and NODE_OPTIONS: the young-generation cap for `proxy`, nothing for other commands.
 */
export function v8FlagsFor(argv: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  if (argv[0] !== 'proxy') return [];
  const sized = [...execArgv, nodeOptions ?? ''].some((flag) => YOUNG_GENERATION_FLAGS.test(flag));
  return sized ? [] : ['--semi-space-growth-factor=1'];
}

/** Sets `v8FlagsFor(argv, ...)` in this process; call before importing anything that allocates much. */
export function applyV8Flags(argv: readonly string[]): void {
  for (const flag of v8FlagsFor(argv, process.execArgv, process.env.NODE_OPTIONS)) setFlagsFromString(flag);
}
