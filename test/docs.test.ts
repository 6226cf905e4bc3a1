/** docs/errors.md documents exactly the codes of the catalog, each with its severity. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CODES, type Code } from '../src/core/codes.js';
import { ROOT } from './helpers.js';

describe('docs/errors.md', () => {
  const text = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Map<string, string>();
  for (const m of text.matchAll(/^### (TRELLIS_[A-Z0-9_]+)\n\*(error|warning|info)\*/gm)) documented.set(m[1] as string, m[2] as string);

  it('lists every code the program uses, and no other', () => {
    assert.deepEqual([...documented.keys()].sort(), Object.keys(CODES).sort());
  });

  it('gives each code the severity the program reports', () => {
    for (const [code, severity] of documented) assert.equal(severity, CODES[code as Code].severity, code);
  });
});
