/**
 * The ADS service definition is built over the one protobufjs Root instead of
 * @grpc/proto-loader's package definition. Peers (grpc-js-xds clients, Envoy, older
 * Trellis builds) and the handlers see no difference: the same bytes on the wire and the
 * same plain objects as proto-loader with LOADER_OPTIONS, checked here against
 * proto-loader itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { anyOf, encodeResource, type PackedAny } from '../../src/xds/any.js';
import { ADS_SERVICE_NAME, adsServiceDefinition, LOADER_OPTIONS, XDS_PROTO_FILES, xdsIncludeDirs } from '../../src/xds/protos.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import type { DiscoveryRequest } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js';
import type { DiscoveryResponse } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js';
import type { DeltaDiscoveryResponse } from '../../src/xds/generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.js';

const TIMEOUT_MS = 20_000;

function packed(typeUrl: string, message: object): PackedAny {
  const r = encodeResource(typeUrl, message);
  if (!r.ok) assert.fail(r.error);
  return r.any;
}

/** A NACK with a node whose metadata Struct nests a map and a list (the camelCase well-known types). */
const request: DiscoveryRequest = {
  version_info: '7',
  node: {
    id: 'sidecar-1',
    cluster: 'reviews.default',
    locality: { region: 'r1', zone: 'z1', sub_zone: '' },
    user_agent_name: 'trellis-proxy',
    metadata: {
      fields: {
        NAMESPACE: { stringValue: 'default' },
        LABELS: { structValue: { fields: { app: { stringValue: 'reviews' } } } },
        INSTANCE_IPS: { listValue: { values: [{ stringValue: '127.0.0.1' }, { numberValue: 2 }, { nullValue: 'NULL_VALUE' }] } },
        READY: { boolValue: true },
      },
    },
  },
  resource_names: ['b', 'a'],
  type_url: TYPE_URLS.ROUTE,
  response_nonce: 'n3',
  error_detail: { code: 3, message: 'RouteConfiguration "a": bad' },
};

/** Every resource type, with nested Anys, enums, 64-bit integers, oneofs, durations and wrappers. */
const response: DiscoveryResponse = {
  version_info: '8',
  type_url: TYPE_URLS.LISTENER,
  nonce: 'n4',
  resources: [
    packed(TYPE_URLS.LISTENER, {
      name: 'outbound',
      address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
      filter_chains: [{
        filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, {
            stat_prefix: 'outbound',
            rds: { route_config_name: '9080', config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: anyOf(TYPE_URLS.ROUTER, {}) }],
          }),
        }],
      }],
    }),
    packed(TYPE_URLS.CLUSTER, {
      name: 'outbound|9080||reviews',
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
      lb_policy: 'LEAST_REQUEST',
      connect_timeout: { seconds: '10', nanos: 500_000_000 },
      circuit_breakers: { thresholds: [{ max_requests: { value: 100 } }] },
    }),
    packed(TYPE_URLS.ENDPOINT, {
      cluster_name: 'outbound|9080||reviews',
      endpoints: [{
        locality: { region: 'r1' },
        load_balancing_weight: { value: 3 },
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9081 } } }, health_status: 'HEALTHY' }],
      }],
    }),
    packed(TYPE_URLS.ROUTE, {
      name: '9080',
      virtual_hosts: [{ name: 'reviews', domains: ['reviews'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews', timeout: { seconds: '0', nanos: 0 } } }] }],
    }),
    // An Any the protos do not know stays packed, in both.
    { type_url: 'type.googleapis.com/example.Unknown', value: Buffer.from([8, 1]) },
  ],
};

const delta: DeltaDiscoveryResponse = {
  system_version_info: '9',
  type_url: TYPE_URLS.CLUSTER,
  nonce: 'd1',
  removed_resources: ['old'],
  resources: [{ name: 'c', version: '1', resource: packed(TYPE_URLS.CLUSTER, { name: 'c', type: 'STATIC' }) }],
};

function loaderService(): grpc.ServiceDefinition {
  const def = loadSync([...XDS_PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [...xdsIncludeDirs()] });
  return def[ADS_SERVICE_NAME] as grpc.ServiceDefinition;
}

describe('the ADS service over the one protobufjs Root', { timeout: TIMEOUT_MS }, () => {
  const ours = adsServiceDefinition();
  const theirs = loaderService();

  it('has the methods, paths, streaming flags and client aliases proto-loader gives', () => {
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
    for (const name of Object.keys(theirs)) {
      const [a, b] = [ours[name], theirs[name]];
      assert.ok(a !== undefined && b !== undefined);
      assert.deepEqual([a.path, a.requestStream, a.responseStream, a.originalName], [b.path, b.requestStream, b.responseStream, b.originalName], name);
    }
  });

  it('writes the same bytes and reads the same objects as proto-loader (SotW request and response)', () => {
    const [a, b] = [ours.StreamAggregatedResources, theirs.StreamAggregatedResources];
    assert.ok(b !== undefined);
    const requestBytes = b.requestSerialize(request);
    assert.deepEqual(a.requestSerialize(request), requestBytes);
    assert.deepEqual(a.requestDeserialize(requestBytes), b.requestDeserialize(requestBytes));
    const responseBytes = b.responseSerialize(response);
    assert.deepEqual(a.responseSerialize(response), responseBytes);
    const decoded = a.responseDeserialize(responseBytes) as { resources: Record<string, unknown>[] };
    assert.deepEqual(decoded, b.responseDeserialize(responseBytes));
    // Known Anys arrive unpacked ({'@type'}), unknown ones as {type_url, value}.
    assert.deepEqual(decoded.resources.map((r) => r['@type'] ?? r['type_url']), [
      TYPE_URLS.LISTENER, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.ROUTE, 'type.googleapis.com/example.Unknown',
    ]);
  });

  it('writes and reads delta responses as proto-loader does', () => {
    const [a, b] = [ours.DeltaAggregatedResources, theirs.DeltaAggregatedResources];
    assert.ok(b !== undefined);
    const bytes = b.responseSerialize(delta);
    assert.deepEqual(a.responseSerialize(delta), bytes);
    assert.deepEqual(a.responseDeserialize(bytes), b.responseDeserialize(bytes));
  });
});
