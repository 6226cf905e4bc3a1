/**
 * `trellis up` with a workload whose command fails at once (a wrong path in
 * workloads.yaml): the mesh is up as soon as the others are registered, not after the
 * 30 s registration wait, and the summary names the workload that exited.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UpMesh } from './up-mesh.js';

const SERVER = "require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, '127.0.0.1')";

describe('trellis up with a workload that exits at once', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-up-exit-'));
  let mesh: UpMesh | undefined;
  after(() => {
    mesh?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is up without waiting for it, and says it exited', async () => {
    mkdirSync(join(dir, 'mesh'));
    writeFileSync(join(dir, 'workloads.yaml'), `workloads:
- name: hello
  command: [node, -e, "${SERVER}"]
- name: typo
  command: [node, "\${TRELLIS_HOME}/dist/no-such-program.js"]
`);
    // Well under the 30 s trellis up gives workloads to register.
    mesh = await UpMesh.start(dir, ['--xds-port', '0', '--admin-port', '0', '--log-level', 'warn'], { timeoutMs: 20_000, gateway: false });
    assert.match(mesh.output, /^ {2}workloads {7}1 of 2 registered so far: hello, typo$/m);
    assert.match(mesh.output, /^ {2}exited {10}typo \(see the log above\)$/m);
    // Its error may come through its log pipe after the summary.
    await mesh.waitFor(/^typo \| .*Cannot find module/m, 10_000, "typo's error in the log");
    assert.equal(await mesh.interrupt(), 0, mesh.output);
  });
});
