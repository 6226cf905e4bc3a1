/** Consistent-hash keys as route hash policies; snapshot versions that survive a restart. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translate } from '../../src/control-plane/translate/index.js';
import { encodeTranslation } from '../../src/control-plane/xds-server/encode.js';
import { BOOKINFO, meshOf, node } from './mesh-fixture.js';

const RATINGS = 'ratings.default.svc.cluster.local';

function hashPolicyFor(consistentHash: string) {
  const t = translate(meshOf(`${BOOKINFO}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer:
      consistentHash: ${consistentHash}
`), node('sidecar'));
  const vh = t.routes.find((r) => r.name === '9080')?.virtual_hosts?.find((v) => v.name === `${RATINGS}:9080`);
  return vh?.routes?.[0]?.route?.hash_policy;
}

describe('consistent hash keys', () => {
  it('hashes by header, cookie (with TTL and path), source IP or query parameter', () => {
    assert.deepEqual(hashPolicyFor('{httpHeaderName: x-user}'), [{ header: { header_name: 'x-user' } }]);
    assert.deepEqual(hashPolicyFor('{httpCookie: {name: session, path: /, ttl: 60s}}'), [{ cookie: { name: 'session', path: '/', ttl: { seconds: 60, nanos: 0 } } }]);
    assert.deepEqual(hashPolicyFor('{useSourceIp: true}'), [{ connection_properties: { source_ip: true } }]);
    assert.deepEqual(hashPolicyFor('{httpQueryParameterName: user}'), [{ query_parameter: { name: 'user' } }]);
  });
});

describe('snapshot versions', () => {
  it('are the same for the same configuration, whatever process computes them (they survive a restart)', () => {
    const first = encodeTranslation(translate(meshOf(BOOKINFO), node('sidecar'))).snapshot;
    const second = encodeTranslation(translate(meshOf(BOOKINFO), node('sidecar'))).snapshot;
    assert.deepEqual([...first.types].map(([t, s]) => [t, s.version]), [...second.types].map(([t, s]) => [t, s.version]));
  });

  it('change only for the types whose content changed', () => {
    const before = encodeTranslation(translate(meshOf(BOOKINFO), node('sidecar'))).snapshot;
    const moved = BOOKINFO.replace('address: 127.0.0.21', 'address: 127.0.0.22');
    const after = encodeTranslation(translate(meshOf(moved), node('sidecar'))).snapshot;
    const changed = [...before.types].filter(([t, s]) => after.types.get(t)?.version !== s.version).map(([t]) => t.split('.').pop());
    assert.deepEqual(changed, ['ClusterLoadAssignment']);
  });
});
