/**
 * Rotating TLS material in place: a chain's context validates new material as at config
 * time and hands it to its servers, or keeps the old; a cluster's slot builds a new
 * UpstreamTls (a new pool key); the watcher follows the live contexts' directories only;
 * `/certs` parses SANs as Envoy lists them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureContextOptions, Server } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Logger } from '../../src/core/log.js';
import { subjectAltNames } from '../../src/proxy/tls/certs-dump.js';
import { clusterTlsOf } from '../../src/proxy/tls/cluster-tls.js';
import type { RotatableTls } from '../../src/proxy/tls/rotatable.js';
import { CertificateRotation, TLS_OWNERS } from '../../src/proxy/tls/rotation.js';
import { DownstreamTls, type TlsMaterial } from '../../src/proxy/tls/tls-context.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { type PemPair, TestCa, writePair } from '../tls-certs.js';

describe('TLS material rotation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-rotate-'));
  let ca: TestCa;
  let first: PemPair;
  let second: PemPair;
  let files: { cert: string; key: string };

  before(async () => {
    ca = await TestCa.create();
    first = await ca.issue({ dns: ['a.example.com'] });
    second = await ca.issue({ dns: ['b.example.com'] });
    files = writePair(dir, 'a', first);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const common = (): object => ({ tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }], alpn_protocols: ['h2'] });

  it('a chain context swaps valid material into its servers, and refuses a key that does not match', () => {
    const tls = new DownstreamTls({ common_tls_context: common() as never }, 'ctx');
    const given: SecureContextOptions[] = [];
    tls.attach({ setSecureContext: (o: SecureContextOptions) => given.push(o) } as unknown as Server);
    assert.deepEqual(tls.files, { chains: [files.cert], keys: [files.key], ca: null });
    assert.equal(tls.rotate(tls.read()), false); // same bytes: nothing to do
    const halfWritten: TlsMaterial = { chains: [second.cert], keys: [first.key], ca: null };
    assert.throws(() => tls.rotate(halfWritten), /ctx\.common_tls_context: the TLS settings are not usable/);
    assert.equal(tls.material.chains[0], first.cert);
    assert.equal(given.length, 0);
    assert.equal(tls.rotate({ chains: [second.cert], keys: [second.key], ca: null }), true);
    assert.equal(given.length, 1);
    assert.deepEqual(given[0]?.cert, [second.cert]);
    assert.deepEqual(tls.serverOptions.ALPNProtocols, ['h2']); // settings other than material stay
  });

  it('a cluster slot builds a new UpstreamTls, with a new pool key, for new material', () => {
    const slot = clusterTlsOf({ transport_socket: { name: 'tls', typed_config: { '@type': TYPE_URLS.UPSTREAM_TLS_CONTEXT, common_tls_context: common() } } });
    assert.ok(slot !== null);
    const before = slot.tls;
    assert.equal(slot.rotate({ chains: [first.cert], keys: [first.key], ca: null }), false);
    assert.throws(() => slot.rotate({ chains: [second.cert], keys: [first.key], ca: null }), /not usable/);
    assert.equal(slot.tls, before);
    assert.equal(slot.rotate({ chains: [second.cert], keys: [second.key], ca: null }), true);
    assert.notEqual(slot.tls.key, before.key);
  });

  it('watches the directories of the live contexts only', () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    const fake = (cert: string): RotatableTls => ({ files: { chains: [cert], keys: [cert], ca: null }, material: { chains: [], keys: [], ca: null }, read: () => ({ chains: [], keys: [], ca: null }), rotate: () => false });
    const rotation = new CertificateRotation(new Logger({ level: 'silent' }), () => undefined);
    try {
      rotation.track([{ name: 'a', owner: TLS_OWNERS.listener, tls: fake(files.cert) }, { name: 'b', owner: TLS_OWNERS.cluster, tls: fake(join(other, 'x.crt')) }]);
      assert.deepEqual([...rotation.directories].sort(), [dir, other].sort());
      rotation.track([{ name: 'a', owner: TLS_OWNERS.listener, tls: fake(files.cert) }]);
      assert.deepEqual(rotation.directories, [dir]);
      rotation.track([]);
      assert.deepEqual(rotation.directories, []);
    } finally {
      rotation.close();
    }
  });

  it('lists DNS, URI and IP SANs as Envoy does', () => {
    assert.deepEqual(subjectAltNames('DNS:a.example.com, URI:spiffe://cluster.local/ns/x/sa/y, IP Address:10.0.0.1, email:x@y'), [
      { dns: 'a.example.com' },
      { uri: 'spiffe://cluster.local/ns/x/sa/y' },
      { ip_address: '10.0.0.1' },
    ]);
    assert.deepEqual(subjectAltNames(undefined), []);
  });
});
