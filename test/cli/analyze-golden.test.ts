/**
 * `trellis analyze` output against golden files: one invalid input per validation rule and
 * one per cross-resource finding. Each golden file holds the exact text output and the
 * exit status. After an intended change of output, regenerate them with
 * `UPDATE_GOLDEN=1 npm test` and review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Code } from '../../src/core/codes.js';
import { ROOT, runCli } from '../helpers.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';
const INVALID = 'test/fixtures/invalid';
const ANALYZE = 'test/fixtures/analyze';
const GOLDEN = join(ROOT, 'test/fixtures/golden');

/** The rule each fixture exists to show: its output must contain this code. */
const INTENDED: Readonly<Record<string, Code>> = {
  'yaml-syntax': 'TRELLIS_CONFIG_YAML_SYNTAX',
  'yaml-duplicate-key': 'TRELLIS_CONFIG_YAML_SYNTAX',
  'not-a-resource': 'TRELLIS_CONFIG_NOT_A_RESOURCE',
  'unsupported-version': 'TRELLIS_CONFIG_UNSUPPORTED_VERSION',
  'unsupported-kind': 'TRELLIS_CONFIG_UNSUPPORTED_KIND',
  'skipped-kind': 'TRELLIS_CONFIG_SKIPPED_KIND',
  'invalid-name': 'TRELLIS_CONFIG_INVALID_NAME',
  'missing-name': 'TRELLIS_CONFIG_INVALID_NAME',
  'unknown-field': 'TRELLIS_CONFIG_UNKNOWN_FIELD',
  'unknown-field-indentation': 'TRELLIS_CONFIG_UNKNOWN_FIELD',
  'wrong-type': 'TRELLIS_CONFIG_WRONG_TYPE',
  'wrong-type-list': 'TRELLIS_CONFIG_WRONG_TYPE',
  'out-of-range-weight': 'TRELLIS_CONFIG_OUT_OF_RANGE',
  'out-of-range-port': 'TRELLIS_CONFIG_OUT_OF_RANGE',
  'out-of-range-percentage': 'TRELLIS_CONFIG_OUT_OF_RANGE',
  'zero-total-weight': 'TRELLIS_CONFIG_OUT_OF_RANGE',
  'required-destination-host': 'TRELLIS_CONFIG_REQUIRED',
  'required-route': 'TRELLIS_CONFIG_REQUIRED',
  'required-gateway-servers': 'TRELLIS_CONFIG_REQUIRED',
  'required-spec': 'TRELLIS_CONFIG_REQUIRED',
  'invalid-enum': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-retry-on': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-mesh-wildcard': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-gateway-host': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-regex-lookahead': 'TRELLIS_CONFIG_INVALID_REGEX',
  'invalid-regex-syntax': 'TRELLIS_CONFIG_INVALID_REGEX',
  'invalid-duration-number': 'TRELLIS_CONFIG_INVALID_DURATION',
  'invalid-duration-text': 'TRELLIS_CONFIG_INVALID_DURATION',
  'invalid-duration-precision': 'TRELLIS_CONFIG_INVALID_DURATION',
  'conflict-redirect-route': 'TRELLIS_CONFIG_CONFLICT',
  'conflict-consistent-hash': 'TRELLIS_CONFIG_CONFLICT',
  'conflict-string-match': 'TRELLIS_CONFIG_CONFLICT',
  'duplicate-subset': 'TRELLIS_CONFIG_DUPLICATE',
  'maglev-table-size': 'TRELLIS_CONFIG_INVALID_VALUE',
  'deprecated-mirror-percent': 'TRELLIS_CONFIG_DEPRECATED',
  'https-without-tls': 'TRELLIS_CONFIG_REQUIRED',
  'invalid-authz-condition': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-peer-authentication-mode': 'TRELLIS_CONFIG_INVALID_VALUE',
  'invalid-service-port': 'TRELLIS_CONFIG_OUT_OF_RANGE',
  'many-errors': 'TRELLIS_CONFIG_UNKNOWN_FIELD',
  'subset-not-found': 'TRELLIS_ANALYZE_SUBSET_NOT_FOUND',
  'gateway-not-found': 'TRELLIS_ANALYZE_GATEWAY_NOT_FOUND',
  'host-not-found': 'TRELLIS_ANALYZE_HOST_NOT_FOUND',
  'conflicting-virtual-services': 'TRELLIS_ANALYZE_CONFLICTING_VIRTUAL_SERVICES',
  'gateway-selects-nothing': 'TRELLIS_ANALYZE_GATEWAY_SELECTS_NOTHING',
  'subset-selects-nothing': 'TRELLIS_ANALYZE_SUBSET_SELECTS_NOTHING',
  'conflicting-peer-authentication': 'TRELLIS_ANALYZE_CONFLICTING_PEER_AUTHENTICATION',
  'duplicate-resource': 'TRELLIS_ANALYZE_DUPLICATE_RESOURCE',
  'certificate-unreadable': 'TRELLIS_ANALYZE_CERTIFICATE_UNREADABLE',
};

interface Case {
  readonly name: string;
  readonly args: readonly string[];
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const f of readdirSync(join(ROOT, INVALID)).sort()) {
    out.push({ name: f.replace(/\.yaml$/, ''), args: [`${INVALID}/${f}`] });
  }
  for (const f of readdirSync(join(ROOT, ANALYZE)).sort()) {
    if (f === 'base-services.yaml') continue;
    out.push({ name: f.replace(/\.yaml$/, ''), args: [`${ANALYZE}/base-services.yaml`, `${ANALYZE}/${f}`] });
  }
  return out;
}

async function checkGolden(name: string, args: readonly string[]): Promise<string> {
  const { status, stdout, stderr } = await runCli(args);
  assert.equal(stderr, '');
  const actual = `${stdout}[exit status ${status}]\n`;
  const file = join(GOLDEN, `${name}.txt`);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) assert.fail(`golden file ${name}.txt is missing; run UPDATE_GOLDEN=1 npm test and review it`);
    writeFileSync(file, actual);
  }
  assert.equal(actual, readFileSync(file, 'utf8'));
  return stdout;
}

describe('trellis analyze: one input per rule, against golden output', () => {
  const all = cases();

  it('has a fixture for every rule it names, and names the rule of every fixture', () => {
    assert.deepEqual(all.map((c) => c.name).sort(), Object.keys(INTENDED).sort());
  });

  for (const c of all) {
    it(c.name, async () => {
      const stdout = await checkGolden(c.name, ['analyze', ...c.args]);
      const intended = INTENDED[c.name] as Code;
      assert.ok(stdout.includes(` ${intended} `) || stdout.includes(` ${intended}:`), `output lacks ${intended}`);
    });
  }

  it('prints machine-readable JSON with -o json', async () => {
    await checkGolden('json-subset-not-found', ['analyze', '-o', 'json', `${ANALYZE}/base-services.yaml`, `${ANALYZE}/subset-not-found.yaml`]);
  });
});
