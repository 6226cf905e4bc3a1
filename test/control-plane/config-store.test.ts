/** The config store: last good version per resource, file removal, duplicates across files. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigStore } from '../../src/control-plane/config-store.js';

const dr = (name: string, lb: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${name}
  trafficPolicy: {loadBalancer: {simple: ${lb}}}
`;

function lbOf(store: ConfigStore, name: string): string | undefined {
  const r = store.snapshot().resources.find((x) => x.kind === 'DestinationRule' && x.metadata.name === name);
  return r?.kind === 'DestinationRule' ? r.spec.trafficPolicy?.loadBalancer?.simple : undefined;
}

describe('ConfigStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads every YAML file, defaulting the namespace', () => {
    writeFileSync(join(dir, 'a.yaml'), `${dr('reviews', 'RANDOM')}---\n${dr('ratings', 'ROUND_ROBIN')}`);
    const store = new ConfigStore(dir);
    assert.equal(store.rescan(), true);
    assert.deepEqual(store.snapshot().resources.map((r) => `${r.metadata.namespace}/${r.metadata.name}`), ['default/reviews', 'default/ratings']);
    assert.equal(store.rescan(), false, 'nothing changed');
  });

  it('keeps the last good version of a resource whose new version is invalid, and reports why', () => {
    writeFileSync(join(dir, 'a.yaml'), `${dr('reviews', 'RANDOM')}---\n${dr('ratings', 'ROUND_ROBIN')}`);
    const store = new ConfigStore(dir);
    store.rescan();
    writeFileSync(join(dir, 'a.yaml'), `${dr('reviews', 'FASTEST')}---\n${dr('ratings', 'LEAST_REQUEST')}`);
    assert.equal(store.rescan(), true);
    assert.equal(lbOf(store, 'reviews'), 'RANDOM', 'the invalid document keeps its previous version');
    assert.equal(lbOf(store, 'ratings'), 'LEAST_REQUEST', 'the valid document beside it is applied');
    const status = store.snapshot().files.find((f) => f.file === 'a.yaml');
    assert.equal(status?.valid, false);
    assert.deepEqual(status?.servingPrevious, ['DestinationRule/default/reviews']);
    assert.deepEqual(status?.findings.map((f) => `${f.line}: ${f.path}: ${f.code}`), ['6: spec.trafficPolicy.loadBalancer.simple: TRELLIS_CONFIG_INVALID_VALUE']);
  });

  it('keeps a whole file when it stops being YAML', () => {
    writeFileSync(join(dir, 'a.yaml'), dr('reviews', 'RANDOM'));
    const store = new ConfigStore(dir);
    store.rescan();
    writeFileSync(join(dir, 'a.yaml'), 'spec: [unclosed\n  host: x\n');
    store.rescan();
    assert.equal(lbOf(store, 'reviews'), 'RANDOM');
    assert.equal(store.snapshot().files[0]?.findings[0]?.code, 'TRELLIS_CONFIG_YAML_SYNTAX');
  });

  it('removes the resources of a removed file, and reports duplicates across files', () => {
    writeFileSync(join(dir, 'a.yaml'), dr('reviews', 'RANDOM'));
    writeFileSync(join(dir, 'b.yaml'), dr('reviews', 'ROUND_ROBIN'));
    const store = new ConfigStore(dir);
    store.rescan();
    assert.equal(lbOf(store, 'reviews'), 'ROUND_ROBIN', 'the later file in path order wins');
    assert.equal(store.snapshot().findings[0]?.code, 'TRELLIS_ANALYZE_DUPLICATE_RESOURCE');
    unlinkSync(join(dir, 'b.yaml'));
    store.rescan();
    assert.equal(lbOf(store, 'reviews'), 'RANDOM');
    unlinkSync(join(dir, 'a.yaml'));
    store.rescan();
    assert.equal(store.snapshot().resources.length, 0);
  });
});

describe('ConfigStore: applied files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-store-applied-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lets a file under applied/ win over the user\'s own definition, as an override rather than a duplicate', () => {
    writeFileSync(join(dir, 'z.yaml'), dr('reviews', 'RANDOM'));
    mkdirSync(join(dir, 'applied'), { recursive: true });
    writeFileSync(join(dir, 'applied/destinationrule.default.reviews.yaml'), dr('reviews', 'LEAST_REQUEST'));
    const store = new ConfigStore(dir);
    store.rescan();
    assert.equal(lbOf(store, 'reviews'), 'LEAST_REQUEST', 'applied wins although "applied/" sorts before "z.yaml"');
    assert.deepEqual(store.snapshot().findings, []);
    assert.equal(store.snapshot().overrides.get('DestinationRule/default/reviews')?.source.file, 'z.yaml');
  });

  it('gives each served resource\'s document as written, also while an invalid file keeps serving its last good version', () => {
    writeFileSync(join(dir, 'z.yaml'), `# comment\n${dr('ratings', 'RANDOM')}---\n${dr('details', 'RANDOM')}`);
    const store = new ConfigStore(dir, { keepPositions: false });
    store.rescan();
    const details = () => store.snapshot().resources.find((r) => r.metadata.name === 'details');
    assert.deepEqual(store.documentOf(details() as never)?.spec, { host: 'details', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } });
    writeFileSync(join(dir, 'z.yaml'), `${dr('ratings', 'RANDOM')}---\n${dr('details', 'FASTEST')}`);
    store.rescan();
    assert.deepEqual(store.documentOf(details() as never)?.spec, { host: 'details', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }, 'the text of the version served');
  });
});
