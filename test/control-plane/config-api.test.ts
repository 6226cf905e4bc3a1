/**
 * `/v1/config` of the admin API over real HTTP on 127.0.0.1: applying (validated against
 * the served configuration, stored as files, served at once), listing, deleting, and a
 * new control plane on the same directory serving what was applied.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';

const USER_FILE = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
`;

const vs = (subset: string, timeout = '10s') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: ${subset}}
    timeout: ${timeout}
`;

interface Json {
  status: number;
  body: Record<string, any>;
}

describe('admin API /v1/config', { timeout: 30_000 }, () => {
  const log = new Logger({ level: 'silent' });
  let dir = '';
  let cp: ControlPlane;
  let base = '';
  const cleanups: (() => Promise<void> | void)[] = [];

  const start = async (): Promise<ControlPlane> => {
    const plane = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log });
    cleanups.push(() => plane.close());
    await plane.start();
    base = `http://127.0.0.1:${plane.adminPort}`;
    return plane;
  };
  const call = async (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Json> => {
    const res = await fetch(base + path, { method, body: body ?? null, headers });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const served = (kind: string, name: string) => cp.store.snapshot().resources.find((r) => r.kind === kind && r.metadata.name === name);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-config-api-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'mesh.yaml'), USER_FILE);
    cp = await start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('stores each resource as a file, serves it at once, and answers created / unchanged / configured', async () => {
    const created = await call('PUT', '/v1/config?source=reviews.yaml', vs('v1'));
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.deepEqual(created.body.resources, [{ kind: 'VirtualService', namespace: 'default', name: 'reviews', file: 'applied/virtualservice.default.reviews.yaml', result: 'created' }]);
    // Served without waiting for the directory watcher.
    assert.equal(served('VirtualService', 'reviews')?.source.file, 'applied/virtualservice.default.reviews.yaml');
    const text = readFileSync(join(dir, 'applied/virtualservice.default.reviews.yaml'), 'utf8');
    assert.match(text, /^# Applied with `trellis apply`/);
    assert.match(text, /namespace: default/, 'the namespace is written out');
    assert.deepEqual(readdirSync(join(dir, 'applied')), ['virtualservice.default.reviews.yaml'], 'no temporary file left');

    const version = cp.store.snapshot().version;
    assert.equal((await call('PUT', '/v1/config', vs('v1'))).body.resources[0].result, 'unchanged');
    assert.equal(cp.store.snapshot().version, version, 'an unchanged resource is not written again');
    assert.equal((await call('PUT', '/v1/config', vs('v2'))).body.resources[0].result, 'configured');
    const r = served('VirtualService', 'reviews');
    assert.equal(r?.kind === 'VirtualService' ? r.spec.http[0]?.route[0]?.destination.subset : undefined, 'v2');
  });

  it('rejects invalid configuration with the findings of analyze, and stores nothing of it', async () => {
    const version = cp.store.snapshot().version;
    const twoDocs = `${vs('v1')}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: x\n  trafficPolicy: {loadBalancer: {simple: FASTEST}}\n`;
    const bad = await call('PUT', '/v1/config', twoDocs, { 'x-trellis-source': 'two.yaml' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'TRELLIS_ADMIN_CONFIG_INVALID');
    assert.match(bad.body.error.message, /two\.yaml: 1 error; nothing was applied/);
    assert.deepEqual(bad.body.error.findings.map((f: any) => [f.code, f.file, f.line, f.path]), [
      ['TRELLIS_CONFIG_INVALID_VALUE', 'two.yaml', 17, 'spec.trafficPolicy.loadBalancer.simple'],
    ]);
    assert.equal(existsSync(join(dir, 'applied')), false, 'the valid document beside it is not stored either');
    assert.equal(cp.store.snapshot().version, version);

    const missingSubset = await call('PUT', '/v1/config?source=vs.yaml', vs('v3'));
    assert.equal(missingSubset.status, 400);
    assert.deepEqual(missingSubset.body.error.findings.map((f: any) => [f.code, f.file, f.line, f.path]), [
      ['TRELLIS_ANALYZE_SUBSET_NOT_FOUND', 'vs.yaml', 9, 'spec.http[0].route[0].destination.subset'],
    ]);
    const syntax = await call('PUT', '/v1/config', 'kind: [unclosed\n');
    assert.equal(syntax.body.error.findings[0].code, 'TRELLIS_CONFIG_YAML_SYNTAX');
    const empty = await call('PUT', '/v1/config', '# nothing\n');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'TRELLIS_ADMIN_BAD_REQUEST');
    assert.equal(existsSync(join(dir, 'applied')), false);
  });

  it('rejects a change that breaks served configuration, but not over errors that were already there', async () => {
    assert.equal((await call('PUT', '/v1/config', vs('v2'))).status, 200);
    const dropV2 = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n';
    const broken = await call('PUT', '/v1/config?source=dr.yaml', dropV2);
    assert.equal(broken.status, 400);
    assert.deepEqual(broken.body.error.findings.map((f: any) => [f.code, f.file, f.resource.name]), [
      ['TRELLIS_ANALYZE_SUBSET_NOT_FOUND', 'applied/virtualservice.default.reviews.yaml', 'reviews'],
    ]);
    // An error in the user's own files (ratings routes to a subset nobody defines) does not block unrelated changes.
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: details}\nspec:\n  hosts: [details]\n  http: [{route: [{destination: {host: details, subset: v9}}]}]\n');
    cp.rescan();
    const unrelated = await call('PUT', '/v1/config', 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ratings}\nspec: {host: ratings}\n');
    assert.equal(unrelated.status, 200, JSON.stringify(unrelated.body));
  });

  it('applies documents without a namespace to the one given, and writes it out', async () => {
    const r = await call('PUT', '/v1/config?namespace=shop', vs('v1').replace('subset: v1', 'port: {number: 9080}'));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.resources[0].file, 'applied/virtualservice.shop.reviews.yaml');
    assert.equal((await call('PUT', '/v1/config?namespace=Not_A_Label', vs('v1'))).status, 400);
  });

  it('lets an applied resource replace one from the user\'s files, and delete bring that one back', async () => {
    const applied = await call('PUT', '/v1/config', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http: [{route: [{destination: {host: ratings}}], timeout: 2s}]\n');
    assert.equal(applied.body.resources[0].result, 'configured', 'it existed (in mesh.yaml)');
    assert.deepEqual(cp.store.snapshot().findings, [], 'an override is not a duplicate');
    const listed = await call('GET', '/v1/config/virtualservice/default/ratings');
    assert.equal(listed.body.source, 'applied');
    assert.deepEqual(listed.body.overrides, { file: 'mesh.yaml', line: 17 });
    const deleted = await call('DELETE', '/v1/config/VirtualService/default/ratings');
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.body.restored, { file: 'mesh.yaml', line: 17 });
    assert.equal(served('VirtualService', 'ratings')?.source.file, 'mesh.yaml');
  });

  it('deletes only applied resources: 404 for unknown ones, 409 naming the file for the user\'s own', async () => {
    await call('PUT', '/v1/config', vs('v1'));
    assert.equal((await call('DELETE', '/v1/config/virtualservice/default/reviews')).status, 200);
    assert.equal(served('VirtualService', 'reviews'), undefined);
    assert.equal(existsSync(join(dir, 'applied/virtualservice.default.reviews.yaml')), false);
    const again = await call('DELETE', '/v1/config/virtualservice/default/reviews');
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'TRELLIS_ADMIN_CONFIG_NOT_FOUND');
    const own = await call('DELETE', '/v1/config/destinationrule/default/reviews');
    assert.equal(own.status, 409);
    assert.equal(own.body.error.code, 'TRELLIS_ADMIN_CONFIG_NOT_APPLIED');
    assert.match(own.body.error.message, /defined in mesh\.yaml \(line 8\)/);
    assert.ok(served('DestinationRule', 'reviews'), 'still served');
    assert.equal((await call('DELETE', '/v1/config/frobnicator/default/x')).status, 404);
    // Names that are not names never reach the file system.
    assert.equal((await call('DELETE', `/v1/config/virtualservice/default/${encodeURIComponent('../mesh')}`)).status, 404);
    assert.equal((await call('DELETE', `/v1/config/virtualservice/${encodeURIComponent('..')}/mesh.yaml`)).status, 404);
    assert.ok(existsSync(join(dir, 'mesh.yaml')));
  });

  it('refuses to delete what the rest still needs (a subset a route uses), and deletes it once nothing does', async () => {
    assert.equal((await call('PUT', '/v1/config', 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ratings}\nspec:\n  host: ratings\n  subsets: [{name: v1, labels: {version: v1}}]\n')).status, 200);
    assert.equal((await call('PUT', '/v1/config', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http: [{route: [{destination: {host: ratings, subset: v1}}]}]\n')).status, 200);
    const refused = await call('DELETE', '/v1/config/destinationrule/default/ratings');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'TRELLIS_ADMIN_CONFIG_DELETE_BREAKS');
    assert.deepEqual(refused.body.error.findings.map((f: any) => [f.code, f.file, f.resource.name]), [
      ['TRELLIS_ANALYZE_SUBSET_NOT_FOUND', 'applied/virtualservice.default.ratings.yaml', 'ratings'],
    ]);
    assert.ok(served('DestinationRule', 'ratings'), 'still served');
    assert.ok(existsSync(join(dir, 'applied/destinationrule.default.ratings.yaml')));
    // The route goes first (mesh.yaml's own, without a subset, serves again); then the rule may go.
    assert.equal((await call('DELETE', '/v1/config/virtualservice/default/ratings')).status, 200);
    assert.equal((await call('DELETE', '/v1/config/destinationrule/default/ratings')).status, 200);
    assert.equal(served('DestinationRule', 'ratings'), undefined);
  });

  it('lists what the store serves, filtered by kind, namespace and name, with the spec as written', async () => {
    await call('PUT', '/v1/config', vs('v1', '1.5s'));
    const all = await call('GET', '/v1/config');
    assert.deepEqual(all.body.resources.map((r: any) => `${r.kind}/${r.name}@${r.source}:${r.line}`), [
      'DestinationRule/reviews@mesh.yaml:8',
      'Service/reviews@mesh.yaml:1',
      'VirtualService/ratings@mesh.yaml:17',
      'VirtualService/reviews@applied:3',
    ]);
    const one = await call('GET', '/v1/config?kind=virtualservice&namespace=default&name=reviews');
    assert.equal(one.body.resources.length, 1);
    const [r] = one.body.resources;
    assert.equal(r.apiVersion, 'networking.istio.io/v1');
    assert.deepEqual(r.spec, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }], timeout: '1.5s' }] });
    assert.deepEqual((await call('GET', '/v1/config?namespace=other')).body.resources, []);
    assert.equal((await call('GET', '/v1/config?kind=nope')).status, 400);
    assert.equal((await call('GET', '/v1/config/virtualservice/default/nope')).status, 404);
  });

  it('serves what was applied after a restart on the same directory', async () => {
    await call('PUT', '/v1/config', vs('v2'));
    await cp.close();
    cp = await start();
    const r = served('VirtualService', 'reviews');
    assert.equal(r?.kind === 'VirtualService' ? r.spec.http[0]?.route[0]?.destination.subset : undefined, 'v2');
    assert.deepEqual(cp.mesh.virtualServices.map((v) => v.metadata.name).sort(), ['ratings', 'reviews'], 'in the mesh the first push translates');
    assert.equal((await call('GET', '/v1/config/virtualservice/default/reviews')).body.source, 'applied');
  });
});
