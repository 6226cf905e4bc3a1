/**
 * Giving back the memory start-up used, once, when `trellis proxy` has its first
 * configuration: a full garbage collection (loading the descriptor, decoding and
 * compiling the configuration leave garbage the young-generation cap keeps scavenging
 * around), then glibc's `malloc_trim(0)` through the native helper, which returns the free
 * pages of the C heaps (parsers, compilers, TLS and gRPC set-up) to the OS; glibc on its
 * own only trims the top of the main heap. Measured on an idle sidecar: about 0.6 MiB of
 * RSS, for one collection of a ~13 MiB heap at start-up (docs/proxy.md "Memory").
 * Without the native helper (or with one built before it had mallocTrim) only the
 * collection runs.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nativeAddon } from '../proxy/listener/fast-accept.js';

/** Collects garbage and trims the C heap; call once, after start-up, off the request path. */
export function releaseStartupMemory(): void {
  // V8 installs `gc` in contexts made after --expose-gc is set (node's documented way to get it at run time).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  gc();
  const addon = nativeAddon();
  // A helper built before mallocTrim existed lacks it: the collection alone is still worth it.
  if (typeof addon?.mallocTrim === 'function') addon.mallocTrim();
}
