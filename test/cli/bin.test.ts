/** The `trellis` executable as a user runs it: real process, exit status, streams. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('reports missing required flags of control-plane and proxy', async () => {
    const cp = await trellis(['control-plane']);
    assert.equal(cp.status, 2);
    assert.match(cp.stderr, /--config is required/);
    const missing = await trellis(['control-plane', '--config', 'no/such/dir']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /TRELLIS_CLI_PATH_NOT_FOUND/);
    const proxy = await trellis(['proxy', '--id', 'x']);
    assert.equal(proxy.status, 2);
    assert.match(proxy.stderr, /--xds is required/);
    const badPort = await trellis(['proxy', '--xds', '127.0.0.1:1', '--id', 'x', '--admin-port', '99999']);
    assert.equal(badPort.status, 2);
    assert.match(badPort.stderr, /--admin-port must be a port number/);
  });

  it('runs the control plane and a proxy as processes, ready over their admin ports, and stops them with SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-bin-'));
    const procs: ReturnType<typeof spawn>[] = [];
    const start = async (args: string[], pattern: RegExp): Promise<RegExpMatchArray> => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(child);
      let out = '';
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no match for ${pattern} in ${out}`)), 20_000);
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString();
          const m = pattern.exec(out);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m);
          }
        });
      });
    };
    try {
      const cp = await start(['control-plane', '--config', dir, '--xds-port', '0', '--admin-port', '0', '--log-level', 'warn'], /xDS on 127\.0\.0\.1:(\d+), admin API on (http:\/\/127\.0\.0\.1:\d+)/);
      assert.equal((await fetch(`${cp[2]}/healthz/ready`)).status, 200);
      const proxy = await start(['proxy', '--xds', `127.0.0.1:${cp[1]}`, '--id', 'bin-test', '--outbound-port', '0', '--admin-port', '0', '--stats-port', '0', '--log-level', 'warn'], /admin on (http:\/\/127\.0\.0\.1:\d+)/);
      const adminUrl = proxy[1] as string;
      assert.ok([200, 503].includes((await fetch(`${adminUrl}/ready`)).status));
      for (const child of [...procs].reverse()) {
        child.kill('SIGTERM');
        const [code] = (await once(child, 'exit')) as [number | null];
        assert.equal(code, 0);
      }
    } finally {
      for (const child of procs) if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
