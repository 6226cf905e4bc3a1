/** Meshes and decoders for the resilience translation tests. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { HTTP_PROTOCOL_OPTIONS } from '../../src/control-plane/translate/clusters.js';
import { consistencyProblems, translate, type Translation } from '../../src/control-plane/translate/index.js';
import type { Mesh } from '../../src/control-plane/translate/mesh.js';
import { parseNode, type ProxyNode } from '../../src/control-plane/translate/node.js';
import { encodeTranslation } from '../../src/control-plane/xds-server/encode.js';
import type { Cluster } from '../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment } from '../../src/xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { Route } from '../../src/xds/generated/envoy/config/route/v3/Route.js';
import { xdsIncludeDirs } from '../../src/xds/protos.js';
import { ROOT } from '../helpers.js';
import { meshOf } from './mesh-fixture.js';

/** The Bookinfo Services (Istio's platform manifest) and one WorkloadEntry per version. */
export function bookinfo(...networkingFiles: string[]): string {
  const platform = readFileSync(join(ROOT, 'samples/bookinfo/platform/kube/bookinfo.yaml'), 'utf8');
  const workloads = [
    ['details', 'v1'], ['ratings', 'v1'], ['reviews', 'v1'], ['reviews', 'v2'], ['reviews', 'v3'], ['productpage', 'v1'],
  ].map(([app, version], i) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${app}-${version}}
spec: {address: 127.0.0.${i + 10}, labels: {app: ${app}, version: ${version}}}
`);
  const samples = networkingFiles.map((f) => readFileSync(join(ROOT, 'samples/bookinfo/networking', f), 'utf8'));
  return [platform, ...workloads, ...samples].join('\n---\n');
}

/** Istio's httpbin sample (Service httpbin:8000) with two workloads, and `extra` YAML. */
export function httpbin(extra: string): string {
  const platform = readFileSync(join(ROOT, 'samples/bookinfo/platform/kube/httpbin.yaml'), 'utf8');
  const workloads = ['v1', 'v2'].map((v, i) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: httpbin-${v}}
spec: {address: 127.0.0.${i + 50}, labels: {app: httpbin, version: ${v}}}
`);
  return [platform, ...workloads, extra].join('\n---\n');
}

/** A proxy node with a locality, as a bootstrap would send it. */
export function nodeAt(kind: 'sidecar' | 'router' | 'grpc', locality: string, labels: Record<string, string> = {}): ProxyNode {
  const [region = '', zone = '', sub_zone = ''] = locality.split('/');
  const fields: Record<string, unknown> = { NAMESPACE: { stringValue: 'default', kind: 'stringValue' } };
  if (kind !== 'grpc') fields.TRELLIS_PROXY_TYPE = { stringValue: kind, kind: 'stringValue' };
  fields.LABELS = { structValue: { fields: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { stringValue: v, kind: 'stringValue' }])) }, kind: 'structValue' };
  return parseNode({ id: `${kind}-${locality}`, metadata: { fields }, locality: { region, zone, sub_zone }, user_agent_name: kind === 'grpc' ? 'gRPC Node Pure JS' : 'trellis' });
}

/** Translates, checks the result is consistent and encodes as xDS, and returns it. */
export function translated(mesh: Mesh | string, node: ProxyNode): Translation {
  const t = translate(typeof mesh === 'string' ? meshOf(mesh) : mesh, node);
  assert.deepEqual(consistencyProblems(t), []);
  assert.deepEqual(encodeTranslation(t).errors, [], 'every resource encodes');
  return t;
}

export function clusterNamed(t: Translation, name: string): Cluster {
  const c = t.clusters.find((x) => x.name === name);
  assert.ok(c !== undefined, `cluster ${name}; have ${t.clusters.map((x) => x.name).join(', ')}`);
  return c;
}

export function assignment(t: Translation, name: string): ClusterLoadAssignment {
  const cla = t.endpoints.find((x) => x.cluster_name === name);
  assert.ok(cla !== undefined, `assignment ${name}`);
  return cla;
}

/** The routes of the virtual host for `host:port` (sidecar RDS by port; gRPC by `host:port`). */
export function routesFor(t: Translation, host: string, port: number): Route[] {
  for (const rc of t.routes) {
    const vh = rc.virtual_hosts?.find((v) => v.name === `${host}:${port}`);
    if (vh !== undefined) return vh.routes ?? [];
  }
  assert.fail(`no virtual host ${host}:${port}`);
}

/** Loads message types from .protos Trellis itself does not load (they ship in grpc-js-xds). */
export function extensionType(file: string, name: string): protobuf.Type {
  const root = new protobuf.Root();
  const dirs = [...xdsIncludeDirs(), dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'))];
  const fallback = root.resolvePath.bind(root);
  root.resolvePath = (origin, target) => dirs.map((d) => join(d, target)).find((f) => existsSync(f)) ?? fallback(origin, target);
  root.loadSync(file, { keepCase: true });
  return root.lookupType(name);
}

/** An opaque Any decoded with its real .proto, defaults left out. */
export function decodeOpaque(any: unknown, file: string): Record<string, unknown> {
  const { type_url: url, value } = any as { type_url: string; value: Uint8Array };
  const type = extensionType(file, url.slice(url.lastIndexOf('/') + 1));
  return type.toObject(type.decode(value), { defaults: false, oneofs: true, longs: Number }) as Record<string, unknown>;
}

/** A cluster's HttpProtocolOptions, decoded with the real proto; undefined when it has none. */
export function protocolOptions(c: Cluster): Record<string, unknown> | undefined {
  const any = c.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS];
  return any === undefined ? undefined : decodeOpaque(any, 'envoy/extensions/upstreams/http/v3/http_protocol_options.proto');
}
