/** Istio's metadata exchange headers and endpoint workload metadata, as the proxy reads them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PEER_ID_HEADER, PEER_METADATA_HEADER, peerFromWorkloadMetadata, peerHeaders, takePeer } from '../../src/proxy/telemetry/peer.js';

describe('peer metadata', () => {
  it('round-trips a proxy\'s self-description through the exchange headers, and removes them', () => {
    const out = peerHeaders({ name: 'reviews-v2-pod', workload: 'reviews-v2', namespace: 'shop', labels: { app: 'reviews', version: 'v2' } });
    const headers = ['host', 'reviews:9080', ...out, 'accept', '*/*'];
    const peer = takePeer(headers);
    assert.deepEqual(headers, ['host', 'reviews:9080', 'accept', '*/*']);
    assert.deepEqual(peer && { workload: peer.workload, namespace: peer.namespace, app: peer.app, version: peer.version, cluster: peer.cluster }, { workload: 'reviews-v2', namespace: 'shop', app: 'reviews', version: 'v2', cluster: 'Kubernetes' });
  });

  it('prefers Istio\'s canonical labels and falls back to the workload name and latest', () => {
    const canonical = takePeer([...peerHeaders({ name: 'p', workload: 'w', namespace: 'n', labels: { app: 'a', 'service.istio.io/canonical-name': 'canon', 'service.istio.io/canonical-revision': 'r7' } })]);
    assert.equal(canonical?.app, 'canon');
    assert.equal(canonical?.version, 'r7');
    const bare = takePeer([...peerHeaders({ name: 'p', workload: 'w', namespace: 'n', labels: {} })]);
    assert.equal(bare?.app, 'w');
    assert.equal(bare?.version, 'latest');
  });

  it('gives null for absent or garbage headers, still removing them', () => {
    assert.equal(takePeer(['host', 'x']), null);
    for (const junk of ['!!!', 'AAAA', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).toString('base64'), Buffer.from([0x0b]).toString('base64')]) {
      const h = [PEER_ID_HEADER, 'x', PEER_METADATA_HEADER, junk];
      assert.equal(takePeer(h), null, junk);
      assert.deepEqual(h, []);
    }
  });

  it('reads Istio endpoint metadata name;namespace;service;revision;cluster', () => {
    const p = peerFromWorkloadMetadata('ratings-v1;default;ratings;v1;Kubernetes');
    assert.deepEqual(p && [p.workload, p.namespace, p.app, p.version, p.cluster], ['ratings-v1', 'default', 'ratings', 'v1', 'Kubernetes']);
    assert.equal(peerFromWorkloadMetadata('nonsense'), null);
  });
});
