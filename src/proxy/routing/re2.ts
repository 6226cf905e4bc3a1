/**
 * RE2 (the `re2` native addon), loaded when the proxy compiles its first regex: a route
 * table without regex matchers or rewrites, the common case, never loads it. Loading it
 * maps the addon's library and links it against Node's symbols, about 1.4 MiB of an idle
 * proxy's memory (docs/proxy.md "Memory"). `createRequire` because the load must be
 * synchronous: routes are compiled synchronously when a configuration arrives.
 */
import { createRequire } from 'node:module';
import type RE2 from 're2';

let RE2Class: typeof RE2 | undefined;

/** `new RE2(pattern, flags)`. Throws, as RE2 does, on an invalid pattern (the caller NACKs). */
export function compileRE2(pattern: string, flags: string): RE2 {
  RE2Class ??= createRequire(import.meta.url)('re2') as typeof RE2;
  return new RE2Class(pattern, flags);
}
