/** The pieces of apply/delete/get that need no control plane: kind names, the control plane URL, bundling files. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { controlPlaneUrl, refPath } from '../../src/cli/control-plane-client.js';
import { kindOf } from '../../src/cli/kind-names.js';
import { bundle } from '../../src/cli/yaml-bundle.js';
import { isTrellisError } from '../../src/core/errors.js';

describe('kind names', () => {
  it('accepts short, singular and plural names in any case, and group-qualified ones', () => {
    const cases: Record<string, string> = {
      vs: 'VirtualService', VirtualServices: 'VirtualService', virtualservice: 'VirtualService',
      dr: 'DestinationRule', destinationrules: 'DestinationRule',
      gw: 'Gateway', gateways: 'Gateway', se: 'ServiceEntry', serviceentries: 'ServiceEntry',
      we: 'WorkloadEntry', workloadentry: 'WorkloadEntry', sidecars: 'Sidecar',
      pa: 'PeerAuthentication', ap: 'AuthorizationPolicy', authorizationpolicies: 'AuthorizationPolicy', ra: 'RequestAuthentication',
      svc: 'Service', services: 'Service', ns: 'Namespace',
      'virtualservices.networking.istio.io': 'VirtualService', 'peerauthentication.security.istio.io': 'PeerAuthentication',
    };
    for (const [word, kind] of Object.entries(cases)) assert.equal(kindOf(word), kind, word);
  });

  it('refuses other words and wrong groups', () => {
    for (const word of ['pods', 'v', 'virtualservices.security.istio.io', 'gatewaies', '']) assert.equal(kindOf(word), undefined, word);
  });
});

describe('control plane URL', () => {
  it('takes the flag, else $TRELLIS_CONTROL_PLANE, else 127.0.0.1:15014; host:port means http', () => {
    assert.equal(controlPlaneUrl(undefined, {}).href, 'http://127.0.0.1:15014/');
    assert.equal(controlPlaneUrl(undefined, { TRELLIS_CONTROL_PLANE: '127.0.0.1:9999' }).href, 'http://127.0.0.1:9999/');
    assert.equal(controlPlaneUrl('http://[::1]:15014', { TRELLIS_CONTROL_PLANE: '127.0.0.1:9999' }).href, 'http://[::1]:15014/');
  });

  it('refuses what is not an http(s) URL, as a usage error', () => {
    for (const bad of ['ftp://x', 'http://[']) {
      assert.throws(() => controlPlaneUrl(bad, {}), (err) => isTrellisError(err, 'TRELLIS_CLI_USAGE'));
    }
  });

  it('names resources in admin API paths, without a namespace for Namespaces', () => {
    assert.equal(refPath({ kind: 'VirtualService', namespace: 'default', name: 'reviews' }), '/v1/config/virtualservice/default/reviews');
    assert.equal(refPath({ kind: 'Namespace', namespace: '', name: 'shop' }), '/v1/config/namespace/shop');
  });
});

describe('bundle of files', () => {
  it('joins files as documents and maps each line back to its file and line', () => {
    const b = bundle([
      { name: 'a.yaml', text: 'kind: A\nmetadata: {}\n' },
      { name: 'b.yaml', text: '# no newline at the end\nkind: B' },
      { name: 'c.yaml', text: '---\nkind: C\n' },
    ]);
    assert.equal(b.text, 'kind: A\nmetadata: {}\n---\n# no newline at the end\nkind: B\n---\n---\nkind: C\n');
    const lines = b.text.split('\n');
    assert.equal(lines[4], 'kind: B');
    assert.deepEqual(b.locate(1), { file: 'a.yaml', line: 1 });
    assert.deepEqual(b.locate(2), { file: 'a.yaml', line: 2 });
    assert.equal(b.locate(3), undefined, 'the separator');
    assert.deepEqual(b.locate(5), { file: 'b.yaml', line: 2 });
    assert.deepEqual(b.locate(8), { file: 'c.yaml', line: 2 });
  });
});
