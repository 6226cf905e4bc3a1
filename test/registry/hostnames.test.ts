/** hostAliases (Istio's virtual-host domains) and findService. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { findService, hostAliases } from '../../src/registry/hostnames.js';
import type { RegistrySnapshot, Service } from '../../src/registry/model.js';
import { resources } from './fixtures.js';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {clusterIP: 10.96.0.20, selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec: {hosts: [api.example.com], addresses: [240.0.0.7, 10.20.0.0/16], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: other}
spec: {hosts: [api.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
`;

function load(): RegistrySnapshot {
  const registry = new ConfigRegistry();
  registry.update(resources(CONFIG));
  return registry.snapshot();
}

function find(snap: RegistrySnapshot, host: string, namespace?: string): Service {
  const s = findService(snap, host, namespace);
  assert.ok(s !== undefined, host);
  return s;
}

describe('hostAliases', { timeout: 10_000 }, () => {
  it('gives a client in the same namespace the short name, qualified names and cluster IP', () => {
    const reviews = find(load(), 'reviews.default.svc.cluster.local');
    assert.deepEqual(hostAliases(reviews, 'default'), ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local', '10.96.0.20']);
  });

  it('gives a client in another namespace no bare short name', () => {
    const reviews = find(load(), 'reviews.default.svc.cluster.local');
    assert.deepEqual(hostAliases(reviews, 'frontend'), ['reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local', '10.96.0.20']);
  });

  it('adds wildcard names for a headless Service (its pods have DNS names under it)', () => {
    const db = find(load(), 'db.data.svc.cluster.local');
    assert.deepEqual(hostAliases(db, 'web'), [
      'db.data',
      'db.data.svc',
      'db.data.svc.cluster.local',
      '*.db.data',
      '*.db.data.svc',
      '*.db.data.svc.cluster.local',
    ]);
  });

  it('gives a ServiceEntry its host as written, plus single-IP addresses', () => {
    const api = find(load(), 'api.example.com', 'egress');
    assert.deepEqual(hostAliases(api, 'egress'), ['api.example.com', '240.0.0.7']);
    assert.deepEqual(hostAliases(find(load(), 'api.example.com', 'other'), 'default'), ['api.example.com']);
  });
});

describe('findService', () => {
  it('finds by hostname, preferring the given namespace', () => {
    const snap = load();
    assert.equal(findService(snap, 'api.example.com')?.namespace, 'egress');
    assert.equal(findService(snap, 'api.example.com', 'other')?.namespace, 'other');
    assert.equal(findService(snap, 'api.example.com', 'nowhere')?.namespace, 'egress');
    assert.equal(findService(snap, 'reviews'), undefined);
  });
});
