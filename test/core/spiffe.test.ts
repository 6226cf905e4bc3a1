import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTrellisError } from '../../src/core/errors.js';
import { parseSpiffeId, requireSpiffeId, spiffePrincipal, spiffeUri } from '../../src/core/spiffe.js';

describe('SPIFFE identities', () => {
  const id = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-productpage' };

  it('formats the URI and the scheme-less principal as Istio does', () => {
    assert.equal(spiffeUri(id), 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
    assert.equal(spiffePrincipal(id), 'cluster.local/ns/default/sa/bookinfo-productpage');
  });

  it('parses both forms back', () => {
    assert.deepEqual(parseSpiffeId('spiffe://cluster.local/ns/default/sa/bookinfo-productpage'), id);
    assert.deepEqual(parseSpiffeId('cluster.local/ns/default/sa/bookinfo-productpage'), id);
  });

  it('rejects identities that are not workload identities', () => {
    for (const bad of ['spiffe://cluster.local', 'spiffe://cluster.local/ns/default', 'spiffe://td/x/default/sa/a', 'spiffe:///ns/a/sa/b', 'spiffe://td/ns//sa/b']) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
    assert.throws(() => requireSpiffeId('spiffe://td/ns/a'), (err) => isTrellisError(err, 'TRELLIS_CORE_INVALID_SPIFFE_ID'));
  });
});
