/**
 * `trellis apply`, `delete` and `get` as a user runs them: real processes against a real
 * control plane process on 127.0.0.1, with Istio's Bookinfo files. The `get` table is
 * checked against a golden file (regenerate with UPDATE_GOLDEN=1 and review the diff).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../helpers.js';

const BIN = join(ROOT, 'dist/src/cli/bin.js');
const NET = 'samples/bookinfo/networking';
const GOLDEN = join(ROOT, 'test/fixtures/apply');

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('trellis apply / delete / get against a running control plane', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cli-apply-'));
  let cp: ChildProcess | undefined;
  let admin = '';

  const trellis = (args: readonly string[], env: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 20_000, env: { ...process.env, TRELLIS_CONTROL_PLANE: admin, ...env } }, (err, stdout, stderr) => {
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
      });
    });

  const startControlPlane = async (): Promise<void> => {
    const child = spawn(process.execPath, [BIN, 'control-plane', '--config', dir, '--xds-port', '0', '--admin-port', '0', '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    cp = child;
    let out = '';
    admin = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`control plane did not start: ${out}`)), 20_000);
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
    });
  };

  const stopControlPlane = async (): Promise<void> => {
    if (cp === undefined || cp.exitCode !== null) return;
    const exited = once(cp, 'exit');
    cp.kill('SIGTERM');
    await exited;
  };

  before(async () => {
    copyFileSync(join(ROOT, 'samples/bookinfo/platform/kube/bookinfo.yaml'), join(dir, 'bookinfo.yaml'));
    copyFileSync(join(ROOT, NET, 'destination-rule-all.yaml'), join(dir, 'destination-rule-all.yaml'));
    await startControlPlane();
  });

  after(async () => {
    if (cp !== undefined && cp.exitCode === null) cp.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies Istio\'s Bookinfo routing (created, then unchanged, then configured) and stores it', async () => {
    const first = await trellis(['apply', '-f', `${NET}/virtual-service-all-v1.yaml`]);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout, 'virtualservice/productpage created\nvirtualservice/reviews created\nvirtualservice/ratings created\nvirtualservice/details created\n');
    const again = await trellis(['apply', '-f', `${NET}/virtual-service-all-v1.yaml`]);
    assert.match(again.stdout, /^virtualservice\/reviews unchanged$/m);
    const split = await trellis(['apply', '-f', `${NET}/virtual-service-reviews-50-v3.yaml`]);
    assert.equal(split.stdout, 'virtualservice/reviews configured\n');
    assert.ok(existsSync(join(dir, 'applied/virtualservice.default.reviews.yaml')));
  });

  it('lists the served configuration as a table, by kind and across namespaces', async () => {
    const vs = await trellis(['get', 'virtualservices']);
    assert.equal(vs.status, 0, vs.stderr);
    assert.equal(vs.stdout, (await trellis(['get', 'vs'])).stdout, 'short and plural names are the same kind');
    assert.match(vs.stdout, /^NAME +GATEWAYS +HOSTS +SOURCE\n/);
    let actual = '';
    for (const args of [['get', 'all', '-A'], ['get', 'vs'], ['get', 'svc'], ['get', 'dr', '-n', 'default']]) {
      const r = await trellis(args);
      actual += `$ trellis ${args.join(' ')}\n${r.stdout}[exit status ${r.status}]\n`;
    }
    const golden = join(GOLDEN, 'get.golden');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, actual);
    assert.equal(actual, readFileSync(golden, 'utf8'));
    const none = await trellis(['get', 'gw']);
    assert.equal(none.status, 0);
    assert.equal(none.stderr, 'No resources found in default namespace.\n');
  });

  it('prints a resource as YAML that applies back unchanged, and JSON', async () => {
    const yaml = await trellis(['get', 'vs', 'reviews', '-o', 'yaml']);
    assert.equal(yaml.status, 0, yaml.stderr);
    assert.match(yaml.stdout, /^apiVersion: networking\.istio\.io\/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n/);
    const file = join(dir, '..', `${dir.split('/').pop()}-reviews.yaml`);
    writeFileSync(file, yaml.stdout);
    try {
      assert.equal((await trellis(['apply', '-f', file])).stdout, 'virtualservice/reviews unchanged\n');
    } finally {
      rmSync(file, { force: true });
    }
    const json = JSON.parse((await trellis(['get', 'dr', '-o', 'json'])).stdout) as { kind: string; items: { metadata: { name: string } }[] };
    assert.equal(json.kind, 'List');
    assert.deepEqual(json.items.map((i) => i.metadata.name), ['details', 'productpage', 'ratings', 'reviews']);
  });

  it('validates locally first: errors printed as analyze prints them, exit 1, the control plane never asked', async () => {
    const r = await trellis(['apply', '-f', 'test/fixtures/invalid/wrong-type.yaml'], { TRELLIS_CONTROL_PLANE: await closedPortUrl() });
    assert.equal(r.status, 1, 'not 3: nothing tried to reach the (absent) control plane');
    assert.match(r.stderr, /^test\/fixtures\/invalid\/wrong-type\.yaml:13: error TRELLIS_CONFIG_WRONG_TYPE VirtualService default\/reviews: spec\.http\[0\]\.route\[0\]\.weight: /m);
    assert.match(r.stderr, /^1 error in 1 file: nothing was applied\.$/m);
    assert.equal(r.stdout, '');
  });

  it('reports the control plane\'s cross-resource errors at the file and line to edit, and applies none of the files', async () => {
    const r = await trellis(['apply', '-f', `${NET}/virtual-service-all-v1.yaml`, '-f', 'test/fixtures/apply/reviews-v9.yaml']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^test\/fixtures\/apply\/reviews-v9\.yaml:13: error TRELLIS_ANALYZE_SUBSET_NOT_FOUND VirtualService default\/reviews: spec\.http\[0\]\.route\[0\]\.destination\.subset: subset "v9"/m);
    assert.match(r.stderr, /nothing was applied/);
    const yaml = (await trellis(['get', 'vs', 'reviews', '-o', 'yaml'])).stdout;
    assert.match(yaml, /subset: v3/, 'the 50/50 split still serves');
  });

  it('deletes applied resources; refuses, naming the file, those from the control plane\'s own files', async () => {
    const del = await trellis(['delete', '-f', `${NET}/virtual-service-reviews-50-v3.yaml`]);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(del.stdout, 'virtualservice/reviews deleted\n');
    const gone = await trellis(['get', 'vs', 'reviews']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /VirtualService default\/reviews does not exist \[TRELLIS_ADMIN_CONFIG_NOT_FOUND\]/);
    const again = await trellis(['delete', '-f', `${NET}/virtual-service-reviews-50-v3.yaml`]);
    assert.equal(again.status, 1);
    assert.equal((await trellis(['delete', '--ignore-not-found', '-f', `${NET}/virtual-service-reviews-50-v3.yaml`])).status, 0);
    const own = await trellis(['delete', '-f', `${NET}/destination-rule-all.yaml`]);
    assert.equal(own.status, 1);
    assert.match(own.stderr, /DestinationRule default\/reviews is defined in destination-rule-all\.yaml \(line 12\), not applied with trellis apply; remove it from that file instead \[TRELLIS_ADMIN_CONFIG_NOT_APPLIED\]/);
  });

  it('keeps what was applied across a restart of the control plane', async () => {
    await stopControlPlane();
    await startControlPlane();
    const r = await trellis(['get', 'vs', '-o', 'json']);
    const names = (JSON.parse(r.stdout) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name);
    assert.deepEqual(names, ['details', 'productpage', 'ratings']);
  });

  it('says how to reach a control plane that is not there (exit 3), and exits 2 on usage errors', async () => {
    const url = await closedPortUrl();
    const r = await trellis(['get', 'vs', '--control-plane', url]);
    assert.equal(r.status, 3);
    assert.equal(r.stderr, `trellis get: cannot reach the control plane at ${url} (connection refused). Is it running? Start one with "trellis control-plane --config DIR", or point --control-plane or $TRELLIS_CONTROL_PLANE at its admin API [TRELLIS_CLI_CONTROL_PLANE_UNREACHABLE]\n`);
    assert.equal((await trellis(['apply', '-f', `${NET}/virtual-service-all-v1.yaml`], { TRELLIS_CONTROL_PLANE: url })).status, 3);
    const kind = await trellis(['get', 'pods']);
    assert.equal(kind.status, 2);
    assert.match(kind.stderr, /unknown kind "pods"/);
    assert.equal((await trellis(['apply', `${NET}/virtual-service-all-v1.yaml`])).status, 2, '-f is required');
    assert.equal((await trellis(['get', 'vs', '-o', 'wide'])).status, 2);
  });
});

/** A URL on 127.0.0.1 where nothing listens (a port just released). */
async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const addr = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
}
