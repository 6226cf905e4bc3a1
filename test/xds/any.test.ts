import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { anyOf, decodeAny, encodeResource, packAny, typeForUrl, type PackedAny } from '../../src/xds/any.js';
import { adsClientConstructor, adsServiceDefinition, xdsRoot } from '../../src/xds/protos.js';
import { PUSH_ORDER, TYPE_URLS } from '../../src/xds/type-urls.js';
import type { Cluster, Cluster__Output } from '../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment, ClusterLoadAssignment__Output } from '../../src/xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { Listener, Listener__Output } from '../../src/xds/generated/envoy/config/listener/v3/Listener.js';
import type { RouteConfiguration } from '../../src/xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import type { HttpConnectionManager } from '../../src/xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js';
import type { Router } from '../../src/xds/generated/envoy/extensions/filters/http/router/v3/Router.js';
import type { DiscoveryRequest__Output } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js';
import type { DiscoveryResponse, DiscoveryResponse__Output } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js';

const TIMEOUT_MS = 10_000;

const hcm: HttpConnectionManager = {
  stat_prefix: 'echo',
  codec_type: 'AUTO',
  rds: { route_config_name: 'echo:50051', config_source: { ads: {}, resource_api_version: 'V3' } },
  http_filters: [{ name: 'envoy.filters.http.router', typed_config: anyOf<Router>(TYPE_URLS.ROUTER, {}) }],
};

const listener: Listener = {
  name: 'echo',
  api_listener: { api_listener: anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, hcm) },
};

const route: RouteConfiguration = {
  name: 'echo:50051',
  virtual_hosts: [
    {
      name: 'echo',
      domains: ['echo', 'echo:50051'],
      routes: [
        {
          match: { prefix: '/', headers: [{ name: 'x-canary', string_match: { exact: 'true' } }] },
          route: {
            weighted_clusters: {
              clusters: [
                { name: 'outbound|50051|v1|echo', weight: { value: 80 } },
                { name: 'outbound|50051|v2|echo', weight: { value: 20 } },
              ],
            },
          },
        },
      ],
    },
  ],
};

const cluster: Cluster = {
  name: 'outbound|50051||echo',
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
  lb_policy: 'ROUND_ROBIN',
  connect_timeout: { seconds: '10', nanos: 0 },
};

const cla: ClusterLoadAssignment = {
  cluster_name: 'outbound|50051||echo',
  endpoints: [
    {
      locality: { region: 'local', zone: 'a', sub_zone: '' },
      load_balancing_weight: { value: 1 },
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 50051 } } }, health_status: 'HEALTHY' },
        { endpoint: { address: { socket_address: { address: '127.0.0.2', port_value: 50051 } } }, health_status: 'HEALTHY' },
      ],
    },
  ],
};

/** Every field of `expected` is in `actual` with the same value (decoding adds defaults). */
function assertContains(actual: unknown, expected: unknown, path = '(root)'): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: array expected`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e: unknown, i) => assertContains(actual[i], e, `${path}[${i}]`));
  } else if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null, `${path}: object expected`);
    for (const [k, v] of Object.entries(expected)) assertContains((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else {
    assert.equal(actual, expected, path);
  }
}

function encodeOk(typeUrl: string, message: object): PackedAny {
  const r = encodeResource(typeUrl, message);
  if (!r.ok) assert.fail(r.error);
  return r.any;
}

function encodeError(typeUrl: string, message: object): string {
  const r = encodeResource(typeUrl, message);
  assert.equal(r.ok, false, 'expected the message to be rejected');
  return r.ok ? '' : r.error;
}

/** encode → decode keeps every field; the decoded object is itself valid input and means the same. */
function roundTrip<T>(typeUrl: string, message: object): T {
  const packed = encodeOk(typeUrl, message);
  assert.equal(packed.type_url, typeUrl);
  assert.ok(Buffer.isBuffer(packed.value));
  const decoded = decodeAny<T>(packed, typeUrl);
  if (!decoded.ok) assert.fail(decoded.error);
  assertContains(decoded.value, message);
  const again = decodeAny<T>(encodeOk(typeUrl, decoded.value as object), typeUrl);
  assert.ok(again.ok);
  assert.deepEqual(again.value, decoded.value);
  return decoded.value;
}

function microsPerCall(n: number, fn: () => unknown): number {
  fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

describe('xds protos', { timeout: TIMEOUT_MS }, () => {
  // Runs first, so it measures cold loads: node --test runs each file in its own process.
  it('loads the protobufjs Root once, and builds the ADS service and client from it once', (t) => {
    const start = performance.now();
    const root = xdsRoot();
    t.diagnostic(`cold load: protobufjs Root ${(performance.now() - start).toFixed(1)} ms`);
    assert.equal(xdsRoot(), root);
    assert.ok(root.lookupType('envoy.config.listener.v3.Listener'));
    assert.equal(adsServiceDefinition(), adsServiceDefinition());
    assert.equal(adsClientConstructor(), adsClientConstructor());
  });

  it('has the ADS service with the SotW and delta methods', () => {
    const service = adsServiceDefinition();
    assert.deepEqual(Object.keys(service).sort(), ['DeltaAggregatedResources', 'StreamAggregatedResources']);
    const sotw = service.StreamAggregatedResources;
    assert.equal(sotw.path, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    assert.equal(sotw.requestStream, true);
    assert.equal(sotw.responseStream, true);
  });

  it('knows every type URL, and pushes CDS, EDS, LDS, RDS in that order', () => {
    for (const [key, url] of Object.entries(TYPE_URLS)) assert.ok(typeForUrl(url), `${key} ${url}`);
    assert.deepEqual(PUSH_ORDER, [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE]);
  });
});

describe('encodeResource and decodeAny', { timeout: TIMEOUT_MS }, () => {
  it('round-trips a Listener whose api_listener is an HCM Any holding a Router Any', () => {
    const out = roundTrip<Listener__Output>(TYPE_URLS.LISTENER, listener);
    const inner = out.api_listener?.api_listener as unknown as Record<string, unknown>;
    assert.equal(inner['@type'], TYPE_URLS.HTTP_CONNECTION_MANAGER);
    assert.equal(inner['route_specifier'], 'rds');
    // The nested Anys really are packed: the HCM decodes from the bytes on its own.
    const hcmBytes = packAny(TYPE_URLS.HTTP_CONNECTION_MANAGER, hcm);
    const decodedHcm = decodeAny<HttpConnectionManager>(hcmBytes, TYPE_URLS.HTTP_CONNECTION_MANAGER);
    assert.ok(decodedHcm.ok);
    assertContains(decodedHcm.value, hcm);
  });

  it('round-trips a RouteConfiguration with weighted clusters and a header matcher', () => {
    roundTrip(TYPE_URLS.ROUTE, route);
  });

  it('round-trips an EDS Cluster over ADS with ROUND_ROBIN', () => {
    const out = roundTrip<Cluster__Output>(TYPE_URLS.CLUSTER, cluster);
    assert.equal(out.cluster_discovery_type, 'type');
    assert.equal(out.eds_cluster_config?.eds_config?.config_source_specifier, 'ads');
  });

  it('round-trips a ClusterLoadAssignment with one weighted locality of two endpoints', () => {
    const out = roundTrip<ClusterLoadAssignment__Output>(TYPE_URLS.ENDPOINT, cla);
    assert.equal(out.endpoints[0]?.lb_endpoints.length, 2);
  });

  it('accepts an already unpacked Any ({"@type"}) as grpc-js delivers it', () => {
    const r = decodeAny<Router>(anyOf(TYPE_URLS.ROUTER, { suppress_envoy_headers: true }), TYPE_URLS.ROUTER);
    assert.deepEqual(r, { ok: true, type_url: TYPE_URLS.ROUTER, value: { suppress_envoy_headers: true } });
  });

  it('logs the encoding cost', (t) => {
    const n = 2000;
    const costs = [
      ['Listener', microsPerCall(n, () => encodeResource(TYPE_URLS.LISTENER, listener))],
      ['Cluster', microsPerCall(n, () => encodeResource(TYPE_URLS.CLUSTER, cluster))],
      ['ClusterLoadAssignment(2)', microsPerCall(n, () => encodeResource(TYPE_URLS.ENDPOINT, cla))],
      ['Listener unchecked', microsPerCall(n, () => packAny(TYPE_URLS.LISTENER, listener))],
    ] as const;
    t.diagnostic(`encode µs/call: ${costs.map(([name, us]) => `${name} ${us.toFixed(1)}`).join(', ')}`);
  });
});

describe('encodeResource rejects what protobufjs would coerce or drop', { timeout: TIMEOUT_MS }, () => {
  const socket = (port: unknown): object => ({
    cluster_name: 'c',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
  });

  it('a string in a uint32 field, with the field path', () => {
    const error = encodeError(TYPE_URLS.ENDPOINT, socket('abc'));
    assert.match(error, /^invalid envoy\.config\.endpoint\.v3\.ClusterLoadAssignment: /);
    assert.match(error, /endpoints\[0\]\.lb_endpoints\[0\]\.endpoint\.address\.socket_address\.port_value: uint32 expected/);
    assert.match(encodeError(TYPE_URLS.ENDPOINT, socket(70_000_000_000)), /port_value: uint32 expected/);
    assert.match(encodeError(TYPE_URLS.ENDPOINT, socket(1.5)), /port_value/);
  });

  it('an unknown enum name, a misspelt field, a bare number for a wrapper', () => {
    assert.match(encodeError(TYPE_URLS.CLUSTER, { ...cluster, lb_policy: 'ROUND_ROBBIN' }), /lb_policy: one of ROUND_ROBIN, .* got string "ROUND_ROBBIN"/);
    assert.match(encodeError(TYPE_URLS.CLUSTER, { ...cluster, lbPolicy: 'ROUND_ROBIN' }), /lbPolicy: unknown field of envoy\.config\.cluster\.v3\.Cluster/);
    assert.match(
      encodeError(TYPE_URLS.CLUSTER, { ...cluster, circuit_breakers: { thresholds: [{ max_requests: 5 }] } }),
      /circuit_breakers\.thresholds\[0\]\.max_requests: UInt32Value object expected, got number 5/,
    );
  });

  it('problems inside nested Anys: a misspelt field and an unknown @type', () => {
    const typo = { ...listener, api_listener: { api_listener: anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, { ...hcm, rds: { route_config_nmae: 'x' } }) } };
    assert.match(encodeError(TYPE_URLS.LISTENER, typo), /api_listener\.api_listener\.rds\.route_config_nmae: unknown field/);
    const unknown = { ...hcm, http_filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/example.Nope' } }] };
    assert.match(encodeError(TYPE_URLS.HTTP_CONNECTION_MANAGER, unknown), /http_filters\[0\]\.typed_config: unknown @type "type\.googleapis\.com\/example\.Nope"/);
  });

  it('two members of a oneof, and an unknown type URL', () => {
    const both = { ...cluster, cluster_type: { name: 'envoy.clusters.aggregate' } };
    assert.match(encodeError(TYPE_URLS.CLUSTER, both), /cluster_discovery_type: only one of type, cluster_type may be set/);
    assert.match(encodeError('type.googleapis.com/example.Nope', {}), /unknown type URL/);
  });

  it('decodeAny reports a wrong type, an unknown type and bad bytes', () => {
    const packed = encodeOk(TYPE_URLS.CLUSTER, cluster);
    assert.deepEqual(decodeAny(packed, TYPE_URLS.LISTENER), {
      ok: false,
      error: `expected an Any of type "${TYPE_URLS.LISTENER}", got "${TYPE_URLS.CLUSTER}"`,
    });
    const unknown = decodeAny({ type_url: 'type.googleapis.com/example.Nope', value: Buffer.alloc(0) });
    assert.ok(!unknown.ok && /unknown type URL/.test(unknown.error));
    const bad = decodeAny({ type_url: TYPE_URLS.CLUSTER, value: Buffer.from([0x0a, 0xff, 0xff, 0xff]) });
    assert.ok(!bad.ok && /^cannot decode envoy\.config\.cluster\.v3\.Cluster: /.test(bad.error), bad.ok ? '' : bad.error);
  });
});

describe('ADS over grpc-js on loopback', { timeout: TIMEOUT_MS }, () => {
  it('carries a packed ClusterLoadAssignment from server to client', async (t) => {
    const server = new grpc.Server();
    t.after(() => server.forceShutdown());
    const requests: DiscoveryRequest__Output[] = [];
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources(call: grpc.ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>) {
        call.on('data', (req: DiscoveryRequest__Output) => {
          requests.push(req);
          call.write({ version_info: '1', type_url: TYPE_URLS.ENDPOINT, nonce: 'n1', resources: [encodeOk(TYPE_URLS.ENDPOINT, cla)] });
        });
        call.on('end', () => call.end());
      },
      DeltaAggregatedResources(call: grpc.ServerDuplexStream<unknown, unknown>) {
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });

    const Client = adsClientConstructor();
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const stream = client.StreamAggregatedResources({ deadline: Date.now() + TIMEOUT_MS });
    t.after(() => stream.cancel());
    const response = new Promise<DiscoveryResponse__Output>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write({ node: { id: 'sidecar~127.0.0.1~echo.default~default.svc.cluster.local', locality: {} }, type_url: TYPE_URLS.ENDPOINT, resource_names: [cla.cluster_name as string] });
    const res = await response;

    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.node?.id, 'sidecar~127.0.0.1~echo.default~default.svc.cluster.local');
    assert.deepEqual(requests[0]?.resource_names, [cla.cluster_name]);
    assert.equal(res.type_url, TYPE_URLS.ENDPOINT);
    assert.equal(res.resources.length, 1);
    // With json: true, grpc-js hands over Anys of known types already unpacked ({'@type'});
    // decodeAny takes that form as well as {type_url, value}.
    const first = res.resources[0];
    assert.ok(first !== undefined && '@type' in first);
    const decoded = decodeAny<ClusterLoadAssignment__Output>(first, TYPE_URLS.ENDPOINT);
    if (!decoded.ok) assert.fail(decoded.error);
    assertContains(decoded.value, cla);
  });
});
