/**
 * Istio's own Bookinfo samples (samples/bookinfo, copied unchanged) load with no error,
 * and mean what Istio makes of them.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPaths } from '../../src/api/files.js';
import type { AnyResource, Resource } from '../../src/api/resource.js';
import type { Kind } from '../../src/api/kinds.js';
import { ROOT } from '../helpers.js';

const NETWORKING = join(ROOT, 'samples/bookinfo/networking');
const PLATFORM = join(ROOT, 'samples/bookinfo/platform/kube/bookinfo.yaml');

function load(file: string) {
  return loadPaths([join(NETWORKING, file)]);
}

function one<K extends Kind>(resources: readonly AnyResource[], kind: K, name: string): Resource<K> {
  const found = resources.filter((r) => r.kind === kind && r.metadata.name === name);
  assert.equal(found.length, 1, `${kind} ${name}`);
  return found[0] as unknown as Resource<K>;
}

describe('Bookinfo samples', () => {
  it('every networking file and the platform Services load with no error', () => {
    const files = readdirSync(NETWORKING);
    assert.equal(files.length, 21);
    for (const f of files) {
      const result = load(f);
      assert.deepEqual(result.findings.filter((x) => x.severity !== 'info'), [], f);
      assert.ok(result.resources.length > 0, f);
    }
    const platform = loadPaths([PLATFORM]);
    assert.deepEqual(platform.findings.filter((f) => f.severity !== 'info'), []);
    assert.deepEqual(platform.resources.map((r) => `${r.kind}/${r.metadata.name}`), ['Service/details', 'Service/ratings', 'Service/reviews', 'Service/productpage']);
    // Deployments and ServiceAccounts are skipped with an info finding each, not an error.
    assert.deepEqual(new Set(platform.findings.map((f) => `${f.severity} ${f.code}`)), new Set(['info TRELLIS_CONFIG_SKIPPED_KIND']));
    assert.equal(platform.findings.length, 10);
    assert.deepEqual(platform.workloads.map((w) => `${w.name} ${w.labels.app}/${w.labels.version} ${w.serviceAccount}`), [
      'details-v1 details/v1 bookinfo-details',
      'ratings-v1 ratings/v1 bookinfo-ratings',
      'reviews-v1 reviews/v1 bookinfo-reviews',
      'reviews-v2 reviews/v2 bookinfo-reviews',
      'reviews-v3 reviews/v3 bookinfo-reviews',
      'productpage-v1 productpage/v1 bookinfo-productpage',
    ]);
  });

  it('resolves the gateway VirtualService: gateway reference, hosts, matches', () => {
    const { resources } = load('bookinfo-gateway.yaml');
    const gw = one(resources, 'Gateway', 'bookinfo-gateway');
    assert.deepEqual(gw.spec.selector, { istio: 'ingressgateway' });
    assert.deepEqual(gw.spec.servers[0]?.port, { number: 8080, name: 'http', protocol: 'HTTP' });
    const vs = one(resources, 'VirtualService', 'bookinfo');
    assert.deepEqual(vs.spec.hosts, ['*']);
    assert.deepEqual(vs.spec.gateways, ['default/bookinfo-gateway']);
    const route = vs.spec.http[0];
    assert.deepEqual(route?.match.map((m) => m.uri), [
      { kind: 'exact', value: '/productpage' },
      { kind: 'prefix', value: '/static' },
      { kind: 'exact', value: '/login' },
      { kind: 'exact', value: '/logout' },
      { kind: 'prefix', value: '/api/v1/products' },
    ]);
    assert.deepEqual(route?.route, [{ destination: { host: 'productpage.default.svc.cluster.local', port: 9080 }, weight: 100 }]);
  });

  it('defaults gateways to mesh and resolves short hosts against the rule namespace', () => {
    const { resources } = load('virtual-service-reviews-test-v2.yaml');
    const vs = one(resources, 'VirtualService', 'reviews');
    assert.deepEqual(vs.spec.gateways, ['mesh']);
    assert.deepEqual(vs.spec.hosts, ['reviews.default.svc.cluster.local']);
    assert.deepEqual(vs.spec.http[0]?.match[0]?.headers, { 'end-user': { kind: 'exact', value: 'jason' } });
    assert.deepEqual(vs.spec.http[0]?.route[0]?.destination, { host: 'reviews.default.svc.cluster.local', subset: 'v2' });
    const cert = one(load('certmanager-gateway.yaml').resources, 'VirtualService', 'cert-manager');
    assert.deepEqual(cert.spec.gateways, ['istio-system/cert-manager-gateway']);
    assert.equal(cert.spec.http[0]?.route[0]?.destination.host, 'cert-manager-resolver.istio-system.svc.cluster.local');
  });

  it('keeps relative weights', () => {
    const vs = one(load('virtual-service-reviews-80-20.yaml').resources, 'VirtualService', 'reviews');
    assert.deepEqual(vs.spec.http[0]?.route.map((r) => [r.destination.subset, r.weight]), [['v1', 80], ['v2', 20]]);
  });

  it('converts fault injection: the 7s delay and the 500 abort for jason, in milliseconds and percent', () => {
    const delay = one(load('virtual-service-ratings-test-delay.yaml').resources, 'VirtualService', 'ratings');
    assert.deepEqual(delay.spec.http[0]?.fault, { delay: { fixedDelayMs: 7000, percentage: 100 } });
    assert.equal(delay.spec.http[1]?.fault, undefined);
    const abort = one(load('virtual-service-ratings-test-abort.yaml').resources, 'VirtualService', 'ratings');
    assert.deepEqual(abort.spec.http[0]?.fault, { abort: { httpStatus: 500, percentage: 100 } });
    const details = one(load('fault-injection-details-v1.yaml').resources, 'VirtualService', 'details');
    assert.deepEqual(details.spec.http[0]?.fault, { abort: { httpStatus: 555, percentage: 100 } });
  });

  it('reads DestinationRule subsets, load balancing and TLS', () => {
    const { resources } = load('destination-rule-all-mtls.yaml');
    const reviews = one(resources, 'DestinationRule', 'reviews');
    assert.equal(reviews.spec.host, 'reviews.default.svc.cluster.local');
    assert.deepEqual(reviews.spec.subsets.map((s) => [s.name, s.labels]), [['v1', { version: 'v1' }], ['v2', { version: 'v2' }], ['v3', { version: 'v3' }]]);
    assert.equal(reviews.spec.trafficPolicy?.tls?.mode, 'ISTIO_MUTUAL');
    const random = one(load('destination-rule-reviews.yaml').resources, 'DestinationRule', 'reviews');
    assert.equal(random.spec.trafficPolicy?.loadBalancer?.simple, 'RANDOM');
  });

  it('reads the egress ServiceEntry, port rewrite and TLS origination', () => {
    const { resources } = load('egress-rule-google-apis.yaml');
    const se = one(resources, 'ServiceEntry', 'googleapis');
    assert.deepEqual(se.spec.hosts, ['www.googleapis.com']);
    assert.equal(se.spec.resolution, 'DNS');
    assert.equal(se.spec.location, 'MESH_EXTERNAL');
    assert.deepEqual(se.spec.ports.map((p) => [p.number, p.protocol]), [[80, 'HTTP'], [443, 'HTTPS']]);
    const vs = one(resources, 'VirtualService', 'rewrite-port-for-googleapis');
    assert.equal(vs.spec.hosts[0], 'www.googleapis.com');
    assert.equal(vs.spec.http[0]?.match[0]?.port, 80);
    assert.deepEqual(vs.spec.http[0]?.route[0]?.destination, { host: 'www.googleapis.com', port: 443 });
    const dr = one(resources, 'DestinationRule', 'originate-tls-for-googleapis');
    assert.deepEqual(dr.spec.trafficPolicy?.portLevelSettings?.[0]?.tls, { mode: 'SIMPLE' });
  });
});
