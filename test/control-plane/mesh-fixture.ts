/** Builds a translation mesh from YAML, for tests. */
import assert from 'node:assert/strict';
import { formatFinding } from '../../src/api/finding.js';
import { loadText } from '../../src/api/load.js';
import { buildMesh, type Mesh } from '../../src/control-plane/translate/mesh.js';
import { parseNode, type ProxyNode } from '../../src/control-plane/translate/node.js';
import { ConfigRegistry } from '../../src/registry/config-source.js';

export function meshOf(yaml: string): Mesh {
  const loaded = loadText(yaml, 'mesh.yaml');
  const errors = loaded.findings.filter((f) => f.severity === 'error');
  assert.deepEqual(errors.map(formatFinding), []);
  const registry = new ConfigRegistry();
  registry.update(loaded.resources);
  return buildMesh(loaded.resources, registry.snapshot());
}

export function node(kind: 'sidecar' | 'router' | 'grpc', namespace = 'default', labels: Record<string, string> = {}): ProxyNode {
  const fields: Record<string, unknown> = { NAMESPACE: { stringValue: namespace, kind: 'stringValue' } };
  if (kind !== 'grpc') fields.TRELLIS_PROXY_TYPE = { stringValue: kind, kind: 'stringValue' };
  const labelFields = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { stringValue: v, kind: 'stringValue' }]));
  fields.LABELS = { structValue: { fields: labelFields }, kind: 'structValue' };
  return parseNode({ id: `${kind}-1`, metadata: { fields }, user_agent_name: kind === 'grpc' ? 'gRPC Node Pure JS' : 'trellis' });
}

/** Bookinfo's services and one WorkloadEntry per version, in two localities. */
export const BOOKINFO = `
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: productpage}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: mongodb}
spec:
  selector: {app: mongodb}
  ports: [{name: mongo, port: 27017}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.11, labels: {app: reviews, version: v1}, locality: us-east/zone-a, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.12, labels: {app: reviews, version: v2}, locality: us-east/zone-a, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3}
spec: {address: 127.0.0.13, labels: {app: reviews, version: v3}, locality: us-west/zone-b}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1}
spec: {address: 127.0.0.21, labels: {app: ratings, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: mongodb-v1}
spec: {address: 127.0.0.31, labels: {app: mongodb}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;
