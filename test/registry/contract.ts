/**
 * The contract every Registry implementation keeps (STYLE 21: one suite per interface,
 * run by every implementation). A factory wraps the implementation in a harness that
 * knows how to add and remove one workload through that source's own API.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { endpointsOf } from '../../src/registry/endpoints.js';
import { findService } from '../../src/registry/hostnames.js';
import type { RegistrySnapshot, Service } from '../../src/registry/model.js';
import type { Registry } from '../../src/registry/registry.js';
import { resources, type WorkloadSpec } from './fixtures.js';

export interface RegistryHarness {
  readonly registry: Registry;
  /** Adds a workload through the source's API; returns its `Workload.id`. */
  addWorkload(spec: WorkloadSpec): string;
  /** Removes the workload with this `Workload.id`. */
  removeWorkload(id: string): void;
  /** Releases timers and subscriptions. */
  close(): void;
}

export type HarnessFactory = () => RegistryHarness;

/**
 * The Service that selects the suite's workloads. A source may hold no services at all
 * (registrations), so the suite declares it in a ConfigRegistry of its own: endpoint
 * selection reads the workloads of the source's snapshot and the service from anywhere.
 */
const SELECTING_SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: contract, namespace: contract}
spec:
  selector: {app: contract}
  ports: [{name: http, port: 80, targetPort: 8080}]
`;

function selectingService(): Service {
  const services = new ConfigRegistry();
  services.update(resources(SELECTING_SERVICE));
  const service = findService(services.snapshot(), 'contract.contract.svc.cluster.local');
  assert.ok(service !== undefined);
  return service;
}

const SPEC_A: WorkloadSpec = { name: 'a', namespace: 'contract', address: '10.1.0.1', labels: { app: 'contract', version: 'v1' }, ports: { http: 9080 }, serviceAccount: 'contract' };
const SPEC_B: WorkloadSpec = { name: 'b', namespace: 'contract', address: '10.1.0.2', labels: { app: 'contract', version: 'v2' }, ports: {}, serviceAccount: 'contract' };

function counter(registry: Registry, t: TestContext): { readonly count: () => number; readonly unsubscribe: () => void } {
  let n = 0;
  const unsubscribe = registry.subscribe(() => n++);
  t.after(unsubscribe);
  return { count: () => n, unsubscribe };
}

function start(factory: HarnessFactory, t: TestContext): RegistryHarness {
  const h = factory();
  t.after(() => h.close()); // teardown first, before any assertion can fail
  return h;
}

function isDeepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

export function registryContract(name: string, factory: HarnessFactory): void {
  describe(`Registry contract: ${name}`, { timeout: 10_000 }, () => {
    it('starts with an empty snapshot, returned as the same object until a change', (t) => {
      const { registry } = start(factory, t);
      const first = registry.snapshot();
      assert.equal(typeof first.version, 'number');
      assert.deepEqual(first.workloads, []);
      assert.equal(registry.snapshot(), first);
    });

    it('adding a workload makes a higher version, notifies once, and shows it', (t) => {
      const h = start(factory, t);
      const before = h.registry.snapshot();
      const changes = counter(h.registry, t);
      const id = h.addWorkload(SPEC_A);
      assert.equal(changes.count(), 1);
      const after = h.registry.snapshot();
      assert.ok(after.version > before.version);
      assert.equal(h.registry.snapshot(), after);
      const w = after.workloads.find((x) => x.id === id);
      assert.ok(w !== undefined, `workload ${id} in the snapshot`);
      assert.equal(w.namespace, 'contract');
      assert.equal(w.address, '10.1.0.1');
      assert.deepEqual(w.labels, { app: 'contract', version: 'v1' });
      assert.deepEqual(w.ports, { http: 9080 });
      assert.equal(w.serviceAccount, 'contract');
      assert.equal(w.healthy, true);
    });

    it('a selecting Service gets the workload as an endpoint', (t) => {
      const h = start(factory, t);
      const service = selectingService();
      const a = h.addWorkload(SPEC_A);
      const b = h.addWorkload(SPEC_B);
      const endpoints = endpointsOf(h.registry.snapshot(), service, 80);
      // A's port map names the service port: it overrides targetPort; B dials targetPort.
      assert.deepEqual(endpoints.map((e) => [e.workloadId, e.address, e.port]), [[a, '10.1.0.1', 9080], [b, '10.1.0.2', 8080]]);
    });

    it('removing a workload notifies once and removes it', (t) => {
      const h = start(factory, t);
      const service = selectingService();
      const id = h.addWorkload(SPEC_A);
      const withIt = h.registry.snapshot();
      const changes = counter(h.registry, t);
      h.removeWorkload(id);
      assert.equal(changes.count(), 1);
      const after = h.registry.snapshot();
      assert.ok(after.version > withIt.version);
      assert.equal(after.workloads.find((w) => w.id === id), undefined);
      assert.deepEqual(endpointsOf(after, service, 80), []);
    });

    it('never changes a snapshot once handed out', (t) => {
      const h = start(factory, t);
      const empty = h.registry.snapshot();
      const emptyCopy: RegistrySnapshot = structuredClone(empty);
      const id = h.addWorkload(SPEC_A);
      const one = h.registry.snapshot();
      const oneCopy: RegistrySnapshot = structuredClone(one);
      h.addWorkload(SPEC_B);
      h.removeWorkload(id);
      assert.deepEqual(empty, emptyCopy);
      assert.deepEqual(one, oneCopy);
      assert.ok(isDeepFrozen(one), 'snapshot is deeply frozen');
      assert.ok(isDeepFrozen(h.registry.snapshot()));
    });

    it('stops notifying after unsubscribe, and counts each subscription', (t) => {
      const h = start(factory, t);
      const kept = counter(h.registry, t);
      const dropped = counter(h.registry, t);
      h.addWorkload(SPEC_A);
      dropped.unsubscribe();
      dropped.unsubscribe(); // idempotent
      h.addWorkload(SPEC_B);
      assert.equal(kept.count(), 2);
      assert.equal(dropped.count(), 1);
    });
  });
}
