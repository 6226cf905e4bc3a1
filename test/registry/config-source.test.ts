/** ConfigRegistry: how Services, ServiceEntries and WorkloadEntries become services and workloads. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { findService } from '../../src/registry/hostnames.js';
import { resources } from './fixtures.js';

const MIXED = `
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: default
  annotations: {networking.istio.io/exportTo: ".,istio-system"}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
  - {name: grpc-api, port: 9090, targetPort: grpc}
  - {name: db, port: 3306}
  - {name: web, port: 8080, appProtocol: http2}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: google, namespace: egress}
spec:
  hosts: [www.googleapis.com, "*.google.com"]
  addresses: [240.0.0.1]
  location: MESH_EXTERNAL
  resolution: DYNAMIC_DNS
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 8443, name: other}, {number: 80, name: web, protocol: grpc-web}]
  exportTo: [egress]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm, namespace: default, labels: {version: v9, team: a}}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}, network: vm-net, weight: 0, ports: {http: 19080}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
`;

describe('ConfigRegistry', { timeout: 10_000 }, () => {
  it('converts a Kubernetes Service: FQDN, Istio port protocols, cluster IP, exportTo annotation', () => {
    const registry = new ConfigRegistry();
    registry.update(resources(MIXED));
    assert.deepEqual(findService(registry.snapshot(), 'reviews.default.svc.cluster.local'), {
      hostname: 'reviews.default.svc.cluster.local',
      name: 'reviews',
      namespace: 'default',
      ports: [
        { name: 'http', port: 9080, targetPort: 9080, protocol: 'http' },
        { name: 'grpc-api', port: 9090, targetPort: 'grpc', protocol: 'grpc' },
        { name: 'db', port: 3306, targetPort: 3306, protocol: 'tcp' },
        { name: 'web', port: 8080, targetPort: 8080, protocol: 'http2' },
      ],
      source: 'kubernetes',
      selector: { app: 'reviews' },
      resolution: 'static',
      location: 'mesh-internal',
      addresses: ['10.96.0.20'],
      exportTo: ['.', 'istio-system'],
    });
  });

  it('makes one service per ServiceEntry host, with lower-cased protocols', () => {
    const registry = new ConfigRegistry();
    registry.update(resources(MIXED));
    const snap = registry.snapshot();
    assert.deepEqual(snap.services.map((s) => s.hostname), ['*.google.com', 'reviews.default.svc.cluster.local', 'www.googleapis.com']);
    assert.deepEqual(findService(snap, 'www.googleapis.com'), {
      hostname: 'www.googleapis.com',
      name: 'google',
      namespace: 'egress',
      ports: [
        { name: 'https', port: 443, targetPort: undefined, protocol: 'https' },
        { name: 'other', port: 8443, targetPort: undefined, protocol: 'auto' },
        { name: 'web', port: 80, targetPort: undefined, protocol: 'grpc-web' },
      ],
      source: 'service-entry',
      resolution: 'dynamic-dns',
      location: 'mesh-external',
      addresses: ['240.0.0.1'],
      exportTo: ['egress'],
    });
  });

  it('converts a WorkloadEntry: metadata labels win, weight 0 is 1, no identity unless given', () => {
    const registry = new ConfigRegistry();
    registry.update(resources(MIXED));
    assert.deepEqual(registry.snapshot().workloads, [
      {
        id: 'workload-entry/default/reviews-vm',
        name: 'reviews-vm',
        namespace: 'default',
        address: '10.0.0.1',
        ports: { http: 19080 },
        labels: { app: 'reviews', team: 'a', version: 'v9' },
        serviceAccount: '',
        locality: { region: '', zone: '', subzone: '' },
        weight: 1,
        network: 'vm-net',
        healthy: true,
        source: 'workload-entry',
      },
    ]);
  });

  it('reads headless and ExternalName Services, and a custom domain', () => {
    const registry = new ConfigRegistry({ domain: 'corp.example' });
    registry.update(
      resources(`
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: mail, namespace: data}
spec: {type: ExternalName, externalName: smtp.example.com}
`),
    );
    const snap = registry.snapshot();
    const db = findService(snap, 'db.data.svc.corp.example');
    const mail = findService(snap, 'mail.data.svc.corp.example');
    assert.deepEqual([db?.resolution, db?.location, db?.addresses, db?.ports], ['passthrough', 'mesh-internal', [], [{ name: '', port: 5432, targetPort: 5432, protocol: 'auto' }]]);
    assert.deepEqual([mail?.resolution, mail?.location, mail?.selector], ['dns', 'mesh-external', undefined]);
  });

  it('lets a Kubernetes Service shadow a ServiceEntry of the same host', () => {
    const registry = new ConfigRegistry();
    registry.update(
      resources(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: decorate, namespace: default}
spec: {hosts: [reviews.default.svc.cluster.local], ports: [{number: 9080, name: http, protocol: HTTP}], resolution: NONE}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
`),
    );
    assert.deepEqual(registry.snapshot().services.map((s) => `${s.source} ${s.hostname}`), ['kubernetes reviews.default.svc.cluster.local']);
  });

  it('makes no new version, and notifies nobody, when an update changes nothing', () => {
    const registry = new ConfigRegistry();
    let changes = 0;
    const unsubscribe = registry.subscribe(() => changes++);
    try {
      const list = resources(MIXED);
      assert.equal(registry.update(list), true);
      const first = registry.snapshot();
      assert.equal(first.version, 1);
      // The same content, freshly loaded and in another order.
      assert.equal(registry.update([...resources(MIXED)].reverse()), false);
      assert.equal(registry.snapshot(), first);
      assert.equal(changes, 1);
      // A change that only touches a kind the registry does not read is no change either.
      assert.equal(registry.update(list.filter((r) => r.kind !== 'VirtualService')), false);
      assert.equal(changes, 1);
      assert.equal(registry.update(list.filter((r) => r.kind !== 'WorkloadEntry')), true);
      assert.equal(registry.snapshot().version, 2);
      assert.equal(changes, 2);
    } finally {
      unsubscribe();
    }
  });
});
