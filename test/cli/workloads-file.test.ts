/** workloads.yaml: `${NAME}` in commands and env values, and the example's file from a copy. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readWorkloads } from '../../src/cli/workloads-file.js';
import { isTrellisError } from '../../src/core/errors.js';
import { ROOT } from '../helpers.js';

describe('workloads.yaml', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-workloads-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function read(text: string, vars: Record<string, string | undefined>): ReturnType<typeof readWorkloads> {
    const file = join(dir, 'workloads.yaml');
    writeFileSync(file, text);
    return readWorkloads(file, vars);
  }

  it('replaces ${NAME} in commands and env values, and nowhere else', () => {
    const mesh = read(`workloads:
- name: web
  labels: {app: "\${APP}"}
  command: [node, "\${TRELLIS_HOME}/dist/web.js", --flag=$HOME, "\${A}\${B}"]
  env: {DATA: "\${TRELLIS_HOME}/data", PLAIN: x}
`, { TRELLIS_HOME: '/opt/trellis', A: 'a', B: 'b' });
    const w = mesh.workloads[0];
    assert.deepEqual(w?.command, ['node', '/opt/trellis/dist/web.js', '--flag=$HOME', 'ab']);
    assert.deepEqual(w?.env, { DATA: '/opt/trellis/data', PLAIN: 'x' });
    assert.deepEqual(w?.labels, { app: '${APP}' });
  });

  it('refuses a variable that is not set, at its line', () => {
    assert.throws(() => read(`workloads:
- name: web
  command:
  - node
  - "\${NOPE}/web.js"
`, {}), (err: unknown) => isTrellisError(err) && err.code === 'TRELLIS_UP_INVALID_WORKLOADS' && /workloads\.yaml:4: workloads\[0\]\.command: \$\{NOPE\} is not set/.test(err.message));
  });

  it("resolves the Bookinfo example's programs wherever the directory is", () => {
    const mesh = readWorkloads(join(ROOT, 'examples/bookinfo/workloads.yaml'), { TRELLIS_HOME: ROOT });
    assert.equal(mesh.workloads.length, 6);
    for (const w of mesh.workloads) assert.match(w.command[1] ?? '', new RegExp(`^${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/dist/examples/bookinfo/src/\\w+\\.js$`), w.name);
  });
});
