/** Endpoint selection: which workloads serve a service port, and on which port. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPaths } from '../../src/api/files.js';
import type { AnyResource } from '../../src/api/resource.js';
import { AggregateRegistry } from '../../src/registry/aggregate.js';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { endpointsOf } from '../../src/registry/endpoints.js';
import { findService } from '../../src/registry/hostnames.js';
import type { RegistrySnapshot, Service } from '../../src/registry/model.js';
import { RegistrationRegistry } from '../../src/registry/registration-source.js';
import { ROOT } from '../helpers.js';
import { FakeClock } from './fake-clock.js';
import { resources } from './fixtures.js';

/** Istio's Bookinfo Services (port 9080 named http, selector app=<svc>), copied unchanged. */
function bookinfoServices(): readonly AnyResource[] {
  const result = loadPaths([join(ROOT, 'samples/bookinfo/platform/kube/bookinfo.yaml')]);
  assert.deepEqual(result.findings.filter((f) => f.severity === 'error'), []);
  return result.resources;
}

/** The reviews versions as WorkloadEntries, in three localities. */
const REVIEWS_WORKLOADS = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.0.11, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.0.0.12, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews, locality: us-east/zone-b/rack-7, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.0.0.13, labels: {app: reviews, version: v3}, serviceAccount: bookinfo-reviews, locality: us-west}
`;

function snapshotOf(...sets: readonly (readonly AnyResource[])[]): RegistrySnapshot {
  const registry = new ConfigRegistry();
  registry.update(sets.flat());
  return registry.snapshot();
}

function service(snapshot: RegistrySnapshot, hostname: string, namespace?: string): Service {
  const s = findService(snapshot, hostname, namespace);
  assert.ok(s !== undefined, hostname);
  return s;
}

const dialled = (snapshot: RegistrySnapshot, s: Service, port: number) => endpointsOf(snapshot, s, port).map((e) => `${e.address}:${e.port}`);

describe('endpointsOf', { timeout: 10_000 }, () => {
  it('gives Bookinfo reviews its three versions on port 9080, with localities and weights', () => {
    const snap = snapshotOf(bookinfoServices(), resources(REVIEWS_WORKLOADS));
    const reviews = service(snap, 'reviews.default.svc.cluster.local');
    assert.deepEqual(endpointsOf(snap, reviews, 9080), [
      {
        workloadId: 'workload-entry/default/reviews-v1',
        workloadName: 'reviews-v1',
        namespace: 'default',
        address: '10.0.0.11',
        port: 9080,
        labels: { app: 'reviews', version: 'v1' },
        serviceAccount: 'bookinfo-reviews',
        locality: { region: 'us-east', zone: 'zone-a', subzone: '' },
        weight: 1,
        healthy: true,
      },
      {
        workloadId: 'workload-entry/default/reviews-v2',
        workloadName: 'reviews-v2',
        namespace: 'default',
        address: '10.0.0.12',
        port: 9080,
        labels: { app: 'reviews', version: 'v2' },
        serviceAccount: 'bookinfo-reviews',
        locality: { region: 'us-east', zone: 'zone-b', subzone: 'rack-7' },
        weight: 3,
        healthy: true,
      },
      {
        workloadId: 'workload-entry/default/reviews-v3',
        workloadName: 'reviews-v3',
        namespace: 'default',
        address: '10.0.0.13',
        port: 9080,
        labels: { app: 'reviews', version: 'v3' },
        serviceAccount: 'bookinfo-reviews',
        locality: { region: 'us-west', zone: '', subzone: '' },
        weight: 1,
        healthy: true,
      },
    ]);
    // Other services select none of them; a port the service does not have has no endpoints.
    assert.deepEqual(endpointsOf(snap, service(snap, 'ratings.default.svc.cluster.local'), 9080), []);
    assert.deepEqual(endpointsOf(snap, reviews, 80), []);
  });

  it('lets a WorkloadEntry ports entry named like the service port override targetPort', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 81, targetPort: 9000}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-a, namespace: shop}
spec: {address: 10.0.1.1, labels: {app: web}, ports: {http: 18080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-b, namespace: shop}
spec: {address: 10.0.1.2, labels: {app: web}}
`),
    );
    const web = service(snap, 'web.shop.svc.cluster.local');
    assert.deepEqual(dialled(snap, web, 80), ['10.0.1.1:18080', '10.0.1.2:8080']);
    assert.deepEqual(dialled(snap, web, 81), ['10.0.1.1:9000', '10.0.1.2:9000']);
  });

  it('resolves a named targetPort in the workload port map, skipping workloads without it', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: web}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-a, namespace: shop}
spec: {address: 10.0.2.1, labels: {app: api}, ports: {web: 8081}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-b, namespace: shop}
spec: {address: 10.0.2.2, labels: {app: api}, ports: {http: 8082}}
`),
    );
    assert.deepEqual(dialled(snap, service(snap, 'api.shop.svc.cluster.local'), 80), ['10.0.2.1:8081']);
  });

  it('gives a ServiceEntry its own endpoints, on every host, and no other service', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: shop}
spec:
  hosts: [legacy.example.com, legacy-alias.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 443, name: tls, protocol: TLS, targetPort: 8443}
  - {number: 80, name: http, protocol: HTTP}
  endpoints:
  - {address: 10.0.3.2, labels: {app: legacy}}
  - {address: 10.0.3.1, labels: {app: legacy}, ports: {tls: 9443}}
---
apiVersion: v1
kind: Service
metadata: {name: legacy-k8s, namespace: shop}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 80}]
`),
    );
    for (const host of ['legacy.example.com', 'legacy-alias.example.com']) {
      const se = service(snap, host);
      assert.deepEqual(dialled(snap, se, 443), ['10.0.3.1:9443', '10.0.3.2:8443']);
      assert.deepEqual(dialled(snap, se, 80), ['10.0.3.1:80', '10.0.3.2:80']);
    }
    assert.deepEqual(endpointsOf(snap, service(snap, 'legacy.example.com'), 443).map((e) => e.workloadId), [
      'service-entry/shop/legacy/1',
      'service-entry/shop/legacy/0',
    ]);
    // The ServiceEntry's endpoints carry app=legacy, but they belong to the ServiceEntry only.
    assert.deepEqual(endpointsOf(snap, service(snap, 'legacy-k8s.shop.svc.cluster.local'), 80), []);
  });

  it('gives a ServiceEntry with a workloadSelector the workloads of its namespace', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm-db, namespace: data}
spec:
  hosts: [db.data.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}, {number: 9187, name: metrics, protocol: HTTP, targetPort: 19187}]
  workloadSelector: {labels: {app: db}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-1, namespace: data}
spec: {address: 10.0.4.1, labels: {app: db}, ports: {tcp-pg: 15432}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-2, namespace: data}
spec: {address: 10.0.4.2, labels: {app: db}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-elsewhere, namespace: other}
spec: {address: 10.0.4.3, labels: {app: db}}
`),
    );
    const db = service(snap, 'db.data.internal');
    assert.deepEqual(db.selector, { app: 'db' });
    assert.deepEqual(dialled(snap, db, 5432), ['10.0.4.1:15432', '10.0.4.2:5432']);
    assert.deepEqual(dialled(snap, db, 9187), ['10.0.4.1:19187', '10.0.4.2:19187']);
  });

  it('does not give a Service workloads of another namespace', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: staging}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
`),
      resources(REVIEWS_WORKLOADS),
    );
    assert.deepEqual(endpointsOf(snap, service(snap, 'reviews.staging.svc.cluster.local'), 9080), []);
  });

  it('gives a Service without selector no endpoints from the mesh', () => {
    const snap = snapshotOf(
      resources(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
`),
      resources(REVIEWS_WORKLOADS),
    );
    assert.equal(service(snap, 'reviews.default.svc.cluster.local').selector, undefined);
    assert.deepEqual(endpointsOf(snap, service(snap, 'reviews.default.svc.cluster.local'), 9080), []);
  });

  it('includes unhealthy workloads, marked so', (t) => {
    const config = new ConfigRegistry();
    config.update(bookinfoServices());
    const registrations = new RegistrationRegistry({ clock: new FakeClock(), newId: () => 'r1' });
    t.after(() => registrations.close());
    const all = new AggregateRegistry([config, registrations]);
    t.after(() => all.close());
    const result = registrations.register({
      namespace: 'default',
      serviceAccount: 'bookinfo-ratings',
      labels: { app: 'ratings' },
      address: '127.0.0.1',
      ports: { http: 19080 },
      healthy: false,
    });
    assert.ok(result.ok);
    const snap = all.snapshot();
    const ratings = service(snap, 'ratings.default.svc.cluster.local');
    assert.deepEqual(endpointsOf(snap, ratings, 9080).map((e) => [e.workloadId, e.address, e.port, e.healthy]), [['registration/r1', '127.0.0.1', 19080, false]]);
  });
});
