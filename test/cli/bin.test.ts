/** The `trellis` executable as a user runs it: real process, exit status, streams. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers.js';

const BIN = join(ROOT, 'dist/src/cli/bin.js');

function trellis(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ status, stdout, stderr });
    });
  });
}

describe('trellis executable', () => {
  it('analyzes Istio\'s Bookinfo samples and Services with no error (exit 0)', async () => {
    const r = await trellis(['analyze', 'samples/bookinfo/networking', 'samples/bookinfo/platform/kube/bookinfo.yaml']);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /^0 errors, \d+ warnings, \d+ info in \d+ resources \(\d+ files\)\.$/m);
    assert.doesNotMatch(r.stdout, / error TRELLIS_/);
  });

  it('exits 1 when a file has errors', async () => {
    const r = await trellis(['analyze', 'test/fixtures/invalid/wrong-type.yaml']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /wrong-type\.yaml:13: error TRELLIS_CONFIG_WRONG_TYPE/);
  });

  it('exits 1 on warnings only when the failure threshold says so', async () => {
    const args = ['test/fixtures/analyze/base-services.yaml', 'test/fixtures/analyze/host-not-found.yaml'];
    assert.equal((await trellis(['analyze', ...args])).status, 0);
    assert.equal((await trellis(['analyze', '--failure-threshold', 'warning', ...args])).status, 1);
  });

  it('exits 2 with TRELLIS_CLI_USAGE for a bad flag or command', async () => {
    const flag = await trellis(['analyze', '--bogus', 'x.yaml']);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /TRELLIS_CLI_USAGE/);
    const output = await trellis(['analyze', '-o', 'yaml', 'x.yaml']);
    assert.equal(output.status, 2);
    assert.match(output.stderr, /--output must be text or json \(got "yaml"\)/);
    const command = await trellis(['frobnicate']);
    assert.equal(command.status, 2);
    assert.match(command.stderr, /unknown command "frobnicate" \[TRELLIS_CLI_USAGE\]/);
  });

  it('reports a missing path with TRELLIS_CLI_PATH_NOT_FOUND', async () => {
    const r = await trellis(['analyze', 'no/such/dir']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'trellis analyze: cannot read "no/such/dir": no such file or directory [TRELLIS_CLI_PATH_NOT_FOUND]\n');
  });

  it('runs as `npx trellis` from the package (the bin entry of package.json)', async () => {
    const out = await new Promise<{ status: number; stdout: string }>((resolve) => {
      execFile('npx', ['--no-install', 'trellis', 'version'], { cwd: ROOT, timeout: 30_000 }, (err, stdout) => {
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout });
      });
    });
    assert.equal(out.status, 0);
    assert.match(out.stdout, /^trellis \d+\.\d+\.\d+\n$/);
  });

  it('prints help and version', async () => {
    const help = await trellis(['help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /analyze\s+Validate Istio configuration/);
    const analyzeHelp = await trellis(['analyze', '--help']);
    assert.match(analyzeHelp.stdout, /--failure-threshold/);
    const version = await trellis(['version']);
    assert.match(version.stdout, /^trellis \d+\.\d+\.\d+\n$/);
  });
});
