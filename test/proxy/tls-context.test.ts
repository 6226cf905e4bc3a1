/**
 * Compiling TLS contexts from xDS: DataSources (files, inline), the NACK messages for bad
 * material and for SDS, the SAN matcher, and pools kept apart by TLS settings.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clusterProblem, UpstreamState } from '../../src/proxy/config/clusters.js';
import { buildListener } from '../../src/proxy/config/listeners.js';
import { subjectAltNames, SanMatcher } from '../../src/proxy/tls/san-matcher.js';
import { DownstreamTls, UpstreamTls } from '../../src/proxy/tls/tls-context.js';
import { upstreamTlsOf } from '../../src/proxy/tls/cluster-tls.js';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../src/proxy/upstream/lb/registry.js';
import type { Cluster__Output } from '../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { Listener__Output } from '../../src/xds/generated/envoy/config/listener/v3/Listener.js';
import type { StringMatcher__Output } from '../../src/xds/generated/envoy/type/matcher/v3/StringMatcher.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { type PemPair, TestCa, writePair } from '../tls-certs.js';

const lbs = new LoadBalancerRegistry();
registerBuiltinLoadBalancers(lbs);

function upstreamCluster(name: string, ctx: object): Cluster__Output {
  return { name, type: 'STATIC', lb_policy: 'ROUND_ROBIN', transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': TYPE_URLS.UPSTREAM_TLS_CONTEXT, ...ctx } } } as unknown as Cluster__Output;
}

function tlsListener(ctx: object): Listener__Output {
  return {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
    filter_chains: [{
      name: 'gw/0',
      filter_chain_match: null,
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, ...ctx } },
      filters: [{ name: 'tcp', typed_config: { '@type': TYPE_URLS.TCP_PROXY, stat_prefix: 's', cluster: 'c' } }],
    }],
  } as unknown as Listener__Output;
}

describe('TLS contexts from xDS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-ctx-'));
  let pair: PemPair;
  let files: { cert: string; key: string };
  let ca: TestCa;

  before(async () => {
    ca = await TestCa.create();
    pair = await ca.issue({ dns: ['a.example.com'], uri: ['spiffe://cluster.local/ns/x/sa/y'] });
    files = writePair(dir, 'a', pair);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads certificates from files, inline_string and inline_bytes', () => {
    const fromFiles = new DownstreamTls({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }] } as never }, 'ctx');
    assert.equal(fromFiles.requireClientCertificate, false);
    assert.equal(fromFiles.serverOptions.requestCert, false);
    const inline = new DownstreamTls({ common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: pair.cert }, private_key: { inline_bytes: Buffer.from(pair.key) } }], alpn_protocols: ['h2'] } as never }, 'ctx');
    assert.deepEqual(inline.serverOptions.ALPNProtocols, ['h2']);
  });

  it('NACKs a listener with a missing or invalid file, naming the chain, field and file but not the key', () => {
    const notKey = join(dir, 'not-a-key.pem');
    writeFileSync(notKey, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    assert.throws(() => buildListener(tlsListener({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: join(dir, 'nope.crt') }, private_key: { filename: files.key } }] } })),
      /filter_chains\[0\] "gw\/0"\.transport_socket\.typed_config\.common_tls_context\.tls_certificates\[0\]\.certificate_chain: cannot read file ".*nope\.crt" \(ENOENT\)/);
    assert.throws(() => buildListener(tlsListener({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: notKey } }] } })),
      (err: Error) => /private_key: file ".*not-a-key\.pem" is not a valid PEM private key/.test(err.message) && !err.message.includes('AAAA'));
    assert.throws(() => buildListener(tlsListener({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: files.key }, private_key: { filename: files.key } }] } })),
      /certificate_chain: file ".*a\.key" holds no PEM certificate/);
  });

  it('NACKs a key that does not belong to the certificate', async () => {
    const other = writePair(dir, 'other', await ca.issue({ dns: ['b.example.com'] }));
    assert.throws(() => buildListener(tlsListener({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: other.key } }] } })),
      /the TLS settings are not usable/);
  });

  it('NACKs SDS as not supported yet', () => {
    assert.throws(() => buildListener(tlsListener({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default' }] } })), /tls_certificate_sds_secret_configs: SDS is not supported yet/);
    const problem = clusterProblem(upstreamCluster('sds', { common_tls_context: { validation_context_sds_secret_config: { name: 'ROOTCA' } } }), lbs);
    assert.match(problem ?? '', /validation_context_sds_secret_config: SDS is not supported yet/);
  });

  it('MUTUAL needs a validation context; OPTIONAL_MUTUAL asks for a certificate without requiring one', () => {
    const common = { tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }], validation_context: { trusted_ca: { inline_string: ca.cert } } };
    const optional = new DownstreamTls({ common_tls_context: common as never }, 'ctx');
    assert.deepEqual([optional.serverOptions.requestCert, optional.serverOptions.rejectUnauthorized], [true, false]);
    const mutual = new DownstreamTls({ common_tls_context: common as never, require_client_certificate: { value: true } }, 'ctx');
    assert.deepEqual([mutual.serverOptions.requestCert, mutual.serverOptions.rejectUnauthorized], [true, true]);
    assert.throws(() => new DownstreamTls({ common_tls_context: { tls_certificates: common.tls_certificates } as never, require_client_certificate: { value: true } }, 'ctx'), /require_client_certificate: needs common_tls_context\.validation_context/);
  });

  it('maps Envoy protocol versions and rejects unknown ciphers', () => {
    const ctx = new DownstreamTls({ common_tls_context: { tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: ['ECDHE-ECDSA-AES128-GCM-SHA256'] }, tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }] } as never }, 'ctx');
    assert.equal(ctx.serverOptions.minVersion, 'TLSv1.2');
    assert.equal(ctx.serverOptions.maxVersion, 'TLSv1.3');
    assert.throws(() => new DownstreamTls({ common_tls_context: { tls_params: { cipher_suites: ['NOT-A-CIPHER'] }, tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }] } as never }, 'ctx'), /not usable/);
  });

  it('SNI is left out when empty or an IP address', () => {
    assert.equal(new UpstreamTls({ sni: 'backend.example.com' }, 'x').servername, 'backend.example.com');
    assert.equal(new UpstreamTls({ sni: '10.0.0.1' }, 'x').servername, undefined);
    assert.equal(new UpstreamTls({ sni: '' }, 'x').servername, undefined);
  });

  it('SAN matchers accept a DNS or URI SAN, and nothing else', () => {
    const cert = { subjectaltname: 'DNS:a.example.com, URI:spiffe://cluster.local/ns/x/sa/y, IP Address:10.0.0.1' };
    assert.deepEqual(subjectAltNames(cert), ['a.example.com', 'spiffe://cluster.local/ns/x/sa/y', '10.0.0.1']);
    const m = (list: object[]): SanMatcher => new SanMatcher(list as StringMatcher__Output[]);
    assert.equal(m([{ exact: 'spiffe://cluster.local/ns/x/sa/y', match_pattern: 'exact' }]).accepts(cert), true);
    assert.equal(m([{ suffix: '.example.com', match_pattern: 'suffix' }]).accepts(cert), true);
    assert.equal(m([{ exact: 'b.example.com', match_pattern: 'exact' }]).accepts(cert), false);
    assert.match(m([{ exact: 'b.example.com', match_pattern: 'exact' }]).check(cert as never)?.message ?? '', /match none of \[exact b\.example\.com\]/);
  });

  it('keeps pools apart by TLS settings; equal settings compile to equal keys', () => {
    const a = upstreamTlsOf(upstreamCluster('a', { sni: 'x.example.com' })) as UpstreamTls;
    const a2 = upstreamTlsOf(upstreamCluster('a', { sni: 'x.example.com' })) as UpstreamTls;
    const b = upstreamTlsOf(upstreamCluster('b', { sni: 'y.example.com' })) as UpstreamTls;
    assert.equal(a.key, a2.key);
    assert.notEqual(a.key, b.key);
    const state = new UpstreamState();
    const e = { id: '127.0.0.1:1', address: '127.0.0.1', port: 1 } as never;
    const plain = state.poolOf(e);
    assert.equal(state.poolOf(e, null), plain);
    assert.notEqual(state.poolOf(e, a), plain);
    assert.equal(state.poolOf(e, a), state.poolOf(e, a2));
    assert.notEqual(state.poolOf(e, a), state.poolOf(e, b));
    assert.notEqual(state.h2('127.0.0.1', 1, a), state.h2('127.0.0.1', 1));
    assert.equal(upstreamTlsOf({}), null);
    state.close();
  });
});
