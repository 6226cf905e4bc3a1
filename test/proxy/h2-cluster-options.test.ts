/** The proxy reads a cluster's upstream HTTP version from Envoy's HttpProtocolOptions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpProtocolOptions } from '../../src/control-plane/translate/clusters.js';
import { clusterProblem, HTTP_PROTOCOL_OPTIONS, protocolOptionsOf } from '../../src/proxy/config/clusters.js';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../src/proxy/upstream/lb/registry.js';
import { UNLIMITED_STREAMS } from '../../src/proxy/upstream/h2-pool.js';
import type { Cluster__Output } from '../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';

function cluster(options: Record<string, unknown> | undefined): Cluster__Output {
  return { name: 'c', type: 'EDS', lb_policy: 'ROUND_ROBIN', typed_extension_protocol_options: options ?? {} } as unknown as Cluster__Output;
}

describe('protocolOptionsOf', () => {
  it('is HTTP/1.1 without options', () => {
    assert.deepEqual(protocolOptionsOf(cluster(undefined)), { protocol: 'http1', maxConcurrentStreams: UNLIMITED_STREAMS });
  });

  it('reads the control plane\'s opaque Any: explicit HTTP/2, the client\'s protocol, and max_concurrent_streams', () => {
    assert.deepEqual(protocolOptionsOf(cluster(httpProtocolOptions('http2', undefined))), { protocol: 'http2', maxConcurrentStreams: UNLIMITED_STREAMS });
    assert.deepEqual(protocolOptionsOf(cluster(httpProtocolOptions('http2', 300))), { protocol: 'http2', maxConcurrentStreams: 300 });
    assert.deepEqual(protocolOptionsOf(cluster(httpProtocolOptions('downstream', 7))), { protocol: 'downstream', maxConcurrentStreams: 7 });
  });

  it('reads base64 bytes (the JSON form) and the unpacked @type form', () => {
    const any = httpProtocolOptions('http2', 1000)?.[HTTP_PROTOCOL_OPTIONS] as { type_url: string; value: Buffer };
    assert.equal(protocolOptionsOf(cluster({ [HTTP_PROTOCOL_OPTIONS]: { type_url: any.type_url, value: any.value.toString('base64') } })).maxConcurrentStreams, 1000);
    const unpacked = { '@type': any.type_url, explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 50 } } } };
    assert.deepEqual(protocolOptionsOf(cluster({ [HTTP_PROTOCOL_OPTIONS]: unpacked })), { protocol: 'http2', maxConcurrentStreams: 50 });
    const h1 = { '@type': any.type_url, explicit_http_config: { http_protocol_options: {} } };
    assert.equal(protocolOptionsOf(cluster({ [HTTP_PROTOCOL_OPTIONS]: h1 })).protocol, 'http1');
  });

  it('NACKs a cluster whose options do not decode', () => {
    const lbs = new LoadBalancerRegistry();
    registerBuiltinLoadBalancers(lbs);
    const bad = cluster({ [HTTP_PROTOCOL_OPTIONS]: { type_url: `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, value: Buffer.from([0x1a, 0x09, 0x12]) } });
    assert.match(clusterProblem(bad, lbs) ?? '', /typed_extension_protocol_options\["envoy\.extensions\.upstreams\.http\.v3\.HttpProtocolOptions"\] cannot be decoded/);
    assert.equal(clusterProblem(cluster(httpProtocolOptions('http2', undefined)), lbs), undefined);
  });
});
