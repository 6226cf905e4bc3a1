/** AggregateRegistry: one snapshot over several sources, with precedence. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregateRegistry } from '../../src/registry/aggregate.js';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { RegistrationRegistry } from '../../src/registry/registration-source.js';
import { FakeClock } from './fake-clock.js';
import { resources, workloadEntry } from './fixtures.js';

const SERVICES = `
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec: {selector: {app: ratings}, ports: [{name: http, port: 9080}]}
`;

describe('AggregateRegistry', { timeout: 10_000 }, () => {
  it('merges the services and workloads of every source, and follows their changes', (t) => {
    const config = new ConfigRegistry();
    config.update(resources(SERVICES));
    const clock = new FakeClock();
    const registrations = new RegistrationRegistry({ clock, newId: () => 'r1' });
    t.after(() => registrations.close());
    const all = new AggregateRegistry([config, registrations]);
    t.after(() => all.close());
    let changes = 0;
    t.after(all.subscribe(() => changes++));

    assert.deepEqual(all.snapshot().services.map((s) => s.hostname), ['ratings.default.svc.cluster.local']);
    assert.ok(registrations.register({ namespace: 'default', serviceAccount: 'sa', labels: { app: 'ratings' }, address: '127.0.0.1', ports: {} }).ok);
    config.update([...resources(SERVICES), workloadEntry({ name: 'vm', namespace: 'default', address: '10.0.0.5', labels: { app: 'ratings' }, ports: {} })]);
    assert.equal(changes, 2);
    assert.deepEqual(all.snapshot().workloads.map((w) => w.id), ['registration/r1', 'workload-entry/default/vm']);
    assert.equal(all.snapshot().version, 2);
    clock.advance(10_000);
    assert.equal(changes, 3);
    assert.deepEqual(all.snapshot().workloads.map((w) => w.id), ['workload-entry/default/vm']);
  });

  it('prefers earlier sources, and drops ServiceEntry hosts that a Kubernetes Service owns', () => {
    const kube = new ConfigRegistry();
    kube.update(resources(SERVICES));
    const files = new ConfigRegistry();
    files.update(
      resources(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec: {hosts: [ratings.default.svc.cluster.local], ports: [{number: 9080, name: http, protocol: HTTP}], resolution: NONE}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec: {selector: {app: other}, ports: [{name: http, port: 9080}]}
`),
    );
    const all = new AggregateRegistry([kube, files]);
    try {
      assert.deepEqual(all.snapshot().services.map((s) => [s.source, s.hostname, s.selector]), [['kubernetes', 'ratings.default.svc.cluster.local', { app: 'ratings' }]]);
    } finally {
      all.close();
    }
  });

  it('stops following its sources when closed, without closing them', () => {
    const config = new ConfigRegistry();
    const all = new AggregateRegistry([config]);
    let changes = 0;
    all.subscribe(() => changes++);
    all.close();
    assert.equal(config.update(resources(SERVICES)), true);
    assert.equal(changes, 0);
    assert.deepEqual(all.snapshot().services, []);
  });
});
