/** Building resources for registry tests from YAML (or JSON) text, as the loader reads files. */
import assert from 'node:assert/strict';
import { loadText } from '../../src/api/load.js';
import type { AnyResource } from '../../src/api/resource.js';

/** The resources of `text`; fails the test on any error or warning finding. */
export function resources(text: string): readonly AnyResource[] {
  const result = loadText(text, 'test.yaml');
  assert.deepEqual(result.findings.filter((f) => f.severity !== 'info'), []);
  return result.resources;
}

export interface WorkloadSpec {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: Readonly<Record<string, number>>;
  readonly serviceAccount?: string;
  readonly locality?: string;
}

/** A WorkloadEntry resource for `spec`. */
export function workloadEntry(spec: WorkloadSpec): AnyResource {
  const doc = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: spec.name, namespace: spec.namespace },
    spec: {
      address: spec.address,
      labels: spec.labels,
      ports: spec.ports,
      ...(spec.serviceAccount === undefined ? {} : { serviceAccount: spec.serviceAccount }),
      ...(spec.locality === undefined ? {} : { locality: spec.locality }),
    },
  };
  const [r] = resources(JSON.stringify(doc));
  assert.ok(r !== undefined);
  return r;
}
