/** The ADS protocol rules of one stream, without a transport. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdsStream, type DiscoveryResponseLike } from '../../src/control-plane/xds-server/ads-stream.js';
import type { ProxyStatus } from '../../src/control-plane/xds-server/proxy-status.js';
import { makeSnapshot, type EncodedResource } from '../../src/control-plane/xds-server/snapshot.js';

const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

function res(typeUrl: string, name: string, content = name): EncodedResource {
  return { name, any: { type_url: typeUrl, value: Buffer.from(content) } };
}

function snapshot(version: string) {
  return makeSnapshot(new Map([
    [LDS, [res(LDS, 'a:80', `a${version}`)]],
    [RDS, [res(RDS, 'a:80', `ra${version}`), res(RDS, 'b:80')]],
    [CDS, [res(CDS, 'c1', `c1${version}`), res(CDS, 'c2')]],
    [EDS, [res(EDS, 'c1', `e1${version}`), res(EDS, 'c2')]],
  ]));
}

function setup() {
  const sent: DiscoveryResponseLike[] = [];
  const status: ProxyStatus = { streamId: 1, proxyId: 'p', kind: 'grpc', connectedAt: '', connected: true, types: {} };
  const stream = new AdsStream({
    wildcardTypes: new Set([LDS, CDS]),
    pushOrder: [CDS, EDS, LDS, RDS],
    onNode: (_node, s) => s.attach(status, snapshot('1')),
    send: (r) => sent.push(r),
  });
  const names = (r: DiscoveryResponseLike | undefined) => r?.resources.map((a) => a.value.toString()) ?? [];
  return { sent, status, stream, names };
}

describe('ADS stream', () => {
  it('answers a first request, then nothing for its ACK', () => {
    const { sent, stream, names, status } = setup();
    stream.onRequest({ node: { id: 'p' }, type_url: LDS, resource_names: ['a:80'] });
    assert.equal(sent.length, 1);
    assert.deepEqual(names(sent[0]), ['a1']);
    const first = sent[0] as DiscoveryResponseLike;
    stream.onRequest({ type_url: LDS, resource_names: ['a:80'], version_info: first.version_info, response_nonce: first.nonce });
    assert.equal(sent.length, 1);
    assert.equal(status.types[LDS]?.ackedVersion, first.version_info);
  });

  it('treats an empty LDS/CDS subscription as a wildcard, but not RDS/EDS', () => {
    const { sent, stream, names } = setup();
    stream.onRequest({ node: {}, type_url: CDS, resource_names: [] });
    assert.deepEqual(names(sent[0]).sort(), ['c11', 'c2']);
    stream.onRequest({ type_url: EDS, resource_names: [] });
    assert.deepEqual(names(sent[1]), []);
  });

  it('ignores stale nonces', () => {
    const { sent, stream } = setup();
    stream.onRequest({ node: {}, type_url: RDS, resource_names: ['a:80'] });
    stream.push(snapshot('2'));
    assert.equal(sent.length, 2);
    // An ACK of the first response, arriving after the second was sent: stale.
    stream.onRequest({ type_url: RDS, resource_names: ['a:80', 'b:80'], response_nonce: sent[0]?.nonce, version_info: sent[0]?.version_info });
    assert.equal(sent.length, 2);
  });

  it('answers a subscription change even when the version did not change', () => {
    const { sent, stream, names } = setup();
    stream.onRequest({ node: {}, type_url: RDS, resource_names: ['a:80'] });
    const r = sent[0] as DiscoveryResponseLike;
    stream.onRequest({ type_url: RDS, resource_names: ['a:80', 'b:80'], response_nonce: r.nonce, version_info: r.version_info });
    assert.equal(sent.length, 2);
    assert.equal(sent[1]?.version_info, r.version_info);
    assert.deepEqual(names(sent[1]), ['ra1', 'b:80']);
  });

  it('records a NACK by error_detail and does not resend the rejected version', () => {
    const { sent, stream, status } = setup();
    stream.onRequest({ node: {}, type_url: CDS });
    const r = sent[0] as DiscoveryResponseLike;
    stream.onRequest({ type_url: CDS, response_nonce: r.nonce, version_info: '', error_detail: { code: 3, message: 'bad cluster c1' } });
    assert.equal(sent.length, 1);
    assert.equal(status.types[CDS]?.lastNack?.message, 'bad cluster c1');
    assert.equal(status.types[CDS]?.lastNack?.version, r.version_info);
    assert.equal(status.types[CDS]?.ackedVersion, undefined);
    stream.push(snapshot('1'));
    assert.equal(sent.length, 1, 'the same (rejected) version is not pushed again');
    stream.push(snapshot('2'));
    assert.equal(sent.length, 2, 'a new version is');
  });

  it('pushes changed types in the order CDS, EDS, LDS, RDS, and only subscribed ones', () => {
    const { sent, stream } = setup();
    for (const t of [LDS, RDS, CDS]) stream.onRequest({ node: {}, type_url: t, resource_names: t === RDS ? ['a:80'] : [] });
    sent.length = 0;
    stream.push(snapshot('2'));
    assert.deepEqual(sent.map((r) => r.type_url), [CDS, LDS, RDS]);
  });

  it('answers a reconnecting client that presents an old version and no nonce', () => {
    const { sent, stream } = setup();
    stream.onRequest({ node: {}, type_url: LDS, version_info: 'from-before-restart', resource_names: ['a:80'] });
    assert.equal(sent.length, 1);
  });
});
