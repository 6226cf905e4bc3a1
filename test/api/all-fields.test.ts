/**
 * Every field listed in the Istio compatibility reference (networking and security) is
 * part of the model: a file that uses each of them loads with no finding at all.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPaths } from '../../src/api/files.js';
import { formatFinding } from '../../src/api/finding.js';
import { ROOT } from '../helpers.js';

describe('every documented field', () => {
  for (const file of ['all-networking-fields.yaml', 'all-security-fields.yaml']) {
    it(`${file} loads with no finding`, () => {
      const result = loadPaths([join(ROOT, 'test/fixtures/valid', file)]);
      assert.deepEqual(result.findings.map(formatFinding), []);
      assert.ok(result.resources.length >= 4);
    });
  }
});
