/**
 * The proxy loads RE2 (a native addon) only when it compiles its first regex, so a proxy
 * whose routes have none never maps it (docs/proxy.md "Memory"); the first regex still
 * compiles and matches with RE2's semantics. In a child process: this test runner's own
 * process may have loaded RE2 through other modules.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const MATCHER_URL = new URL('../../src/proxy/routing/string-matcher.js', import.meta.url).href;

const CHILD = `
import { createRequire } from 'node:module';
import { sep } from 'node:path';
const { compileStringMatcher } = await import(${JSON.stringify(MATCHER_URL)});
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes(sep + 're2' + sep));
const out = { atImport: loaded() };
const exact = compileStringMatcher({ match_pattern: 'exact', exact: 'a', ignore_case: false });
out.afterExact = loaded();
const re = compileStringMatcher({ match_pattern: 'safe_regex', safe_regex: { regex: 'ab+c' }, ignore_case: false });
out.afterRegex = loaded();
out.matches = [exact.matches('a'), re.matches('abbc'), re.matches('xabbc'), re.matches('abbcd')];
try { compileStringMatcher({ match_pattern: 'safe_regex', safe_regex: { regex: '(?<=a)b' }, ignore_case: false }); out.lookbehind = 'compiled'; } catch { out.lookbehind = 'rejected'; }
console.log(JSON.stringify(out));
`;

describe('RE2, loaded on first use', () => {
  it('is not loaded until a regex is compiled, and then matches as RE2', { timeout: 20_000 }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD], { timeout: 15_000 });
    assert.deepEqual(JSON.parse(stdout), {
      atImport: false,
      afterExact: false,
      afterRegex: true,
      matches: [true, true, false, false],
      lookbehind: 'rejected', // RE2 has no lookbehind: the resource is NACKed, as in Envoy
    });
  });
});
