/**
 * TLS origination: a DestinationRule `tls` (SIMPLE, MUTUAL) as the outbound clusters'
 * UpstreamTlsContext, per the control plane / proxy TLS contract.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HTTP_PROTOCOL_OPTIONS } from '../../src/control-plane/translate/clusters.js';
import { untranslatedUses } from '../../src/control-plane/translate/coverage.js';
import { consistencyProblems, translate, type Translation } from '../../src/control-plane/translate/index.js';
import { encodeResource } from '../../src/xds/any.js';
import type { Cluster } from '../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { ROOT } from '../helpers.js';
import { BOOKINFO, meshOf, node } from './mesh-fixture.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const SHOP = 'shop.default.svc.cluster.local';
const UPSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** A service with one port of each protocol family, and the DestinationRule given. */
const shop = (dr: string) => `
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop}
  ports:
  - {name: http, port: 8080}
  - {name: grpc-api, port: 9090}
  - {name: tcp-db, port: 5432}
  - {name: web, port: 7070}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: shop-v1}
spec: {address: 127.0.0.41, labels: {app: shop, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop
${dr}`;

function cluster(t: Translation, name: string): Cluster {
  const c = t.clusters.find((x) => x.name === name);
  assert.ok(c !== undefined, `cluster ${name}; have ${t.clusters.map((x) => x.name).join(', ')}`);
  return c;
}

/** The UpstreamTlsContext of a cluster, checked to be one; undefined when it has no transport socket. */
function tlsOf(c: Cluster): Record<string, unknown> | undefined {
  if (c.transport_socket === undefined) return undefined;
  assert.equal(c.transport_socket?.name, 'envoy.transport_sockets.tls');
  const { '@type': type, ...context } = c.transport_socket?.typed_config as Record<string, unknown>;
  assert.equal(type, UPSTREAM);
  return context;
}

function translated(yaml: string, kind: 'sidecar' | 'router' | 'grpc' = 'sidecar'): Translation {
  const t = translate(meshOf(yaml), node(kind, 'default', kind === 'router' ? { istio: 'egressgateway' } : {}));
  assert.deepEqual(consistencyProblems(t), []);
  for (const c of t.clusters) {
    const encoded = encodeResource(TYPE_URLS.CLUSTER, c);
    assert.ok(encoded.ok, encoded.ok ? '' : `${c.name}: ${encoded.error}`);
  }
  return t;
}

describe('translate: DestinationRule TLS origination', () => {
  it('SIMPLE: SNI from the host, verified against the system roots, on every cluster of the rule, sidecars and gateways alike', () => {
    for (const kind of ['sidecar', 'router'] as const) {
      const t = translated(BOOKINFO.replace('  host: reviews\n', '  host: reviews\n  trafficPolicy: {tls: {mode: SIMPLE}}\n'), kind);
      for (const subset of ['', 'v1', 'v2', 'v3']) {
        assert.deepEqual(tlsOf(cluster(t, `outbound|9080|${subset}|${REVIEWS}`)), {
          sni: REVIEWS,
          common_tls_context: { validation_context: { system_root_certs: {} }, alpn_protocols: ['http/1.1'] },
        }, `${kind} ${subset}`);
      }
      assert.equal(tlsOf(cluster(t, 'outbound|9080||ratings.default.svc.cluster.local')), undefined, 'no rule, no TLS');
    }
  });

  it('MUTUAL: the client certificate, the CA file, SAN matchers and the given SNI', () => {
    const t = translated(shop(`  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/client.pem
      privateKey: /etc/certs/client.key
      caCertificates: /etc/certs/ca.pem
      subjectAltNames: [shop.example.com, spiffe://example.com/ns/default/sa/shop]
      sni: shop.example.com
`));
    assert.deepEqual(tlsOf(cluster(t, `outbound|8080||${SHOP}`)), {
      sni: 'shop.example.com',
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: '/etc/certs/client.pem' }, private_key: { filename: '/etc/certs/client.key' } }],
        validation_context: {
          trusted_ca: { filename: '/etc/certs/ca.pem' },
          match_subject_alt_names: [{ exact: 'shop.example.com' }, { exact: 'spiffe://example.com/ns/default/sa/shop' }],
        },
        alpn_protocols: ['http/1.1'],
      },
    });
  });

  it('offers ALPN by what the cluster speaks: h2 for HTTP/2 and gRPC, http/1.1 for HTTP/1.1, none for TCP or the client\'s protocol', () => {
    const t = translated(shop('  trafficPolicy: {tls: {mode: SIMPLE}}\n'));
    const alpn = (port: number) => (tlsOf(cluster(t, `outbound|${port}||${SHOP}`))?.common_tls_context as { alpn_protocols?: string[] }).alpn_protocols;
    assert.deepEqual(alpn(8080), ['http/1.1']);
    assert.deepEqual(alpn(9090), ['h2']);
    assert.equal(alpn(5432), undefined);
    assert.equal(alpn(7070), undefined, 'auto-detected: the upstream protocol follows each client');
    const upgraded = translated(shop('  trafficPolicy: {tls: {mode: SIMPLE}, connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}\n'));
    assert.deepEqual((tlsOf(cluster(upgraded, `outbound|8080||${SHOP}`))?.common_tls_context as { alpn_protocols?: string[] }).alpn_protocols, ['h2']);
  });

  it('insecureSkipVerify leaves the validation context out: nothing is verified', () => {
    const t = translated(shop('  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}\n'));
    assert.deepEqual(tlsOf(cluster(t, `outbound|5432||${SHOP}`)), { sni: SHOP, common_tls_context: {} });
  });

  it('port-level settings replace the rule\'s tls for their port, even when they leave tls out', () => {
    const t = translated(shop(`  trafficPolicy:
    tls: {mode: SIMPLE}
    portLevelSettings:
    - port: {number: 9090}
      tls: {mode: SIMPLE, sni: api.example.com, caCertificates: /etc/certs/api-ca.pem}
    - port: {number: 5432}
      connectionPool: {tcp: {maxConnections: 10}}
    - port: {number: 7070}
      tls: {mode: DISABLE}
`));
    assert.equal(tlsOf(cluster(t, `outbound|8080||${SHOP}`))?.sni, SHOP);
    assert.deepEqual(tlsOf(cluster(t, `outbound|9090||${SHOP}`)), {
      sni: 'api.example.com',
      common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/certs/api-ca.pem' } }, alpn_protocols: ['h2'] },
    });
    assert.equal(tlsOf(cluster(t, `outbound|5432||${SHOP}`)), undefined, 'replaced, not inherited (istio-compat 1.2)');
    assert.equal(tlsOf(cluster(t, `outbound|7070||${SHOP}`)), undefined, 'DISABLE');
  });

  it('a subset\'s tls applies to its own clusters only', () => {
    const t = translated(shop(`  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: SIMPLE, sni: v1.shop.example.com}}
  - name: v2
    labels: {version: v2}
`));
    assert.equal(tlsOf(cluster(t, `outbound|8080|v1|${SHOP}`))?.sni, 'v1.shop.example.com');
    assert.equal(tlsOf(cluster(t, `outbound|8080||${SHOP}`)), undefined);
    assert.equal(tlsOf(cluster(t, `outbound|8080|v2|${SHOP}`)), undefined);
  });

  it('ISTIO_MUTUAL and credentialName are not translated yet: no transport socket, and a warning naming them', () => {
    for (const tls of ['{mode: ISTIO_MUTUAL}', '{mode: SIMPLE, credentialName: shop-client}']) {
      const yaml = shop(`  trafficPolicy: {tls: ${tls}}\n`);
      const t = translated(yaml);
      assert.equal(tlsOf(cluster(t, `outbound|8080||${SHOP}`)), undefined, tls);
      const dr = meshOf(yaml).destinationRules[0];
      assert.deepEqual(untranslatedUses('DestinationRule', dr?.spec).map((u) => [u.field, u.reason.startsWith('later: mesh mutual TLS')]), [
        [tls.includes('ISTIO') ? 'DestinationRule.spec.trafficPolicy.tls.mode' : 'DestinationRule.spec.trafficPolicy.tls.credentialName', true],
      ], tls);
    }
    const files = meshOf(shop('  trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, sni: x.example.com}}\n')).destinationRules[0];
    assert.deepEqual(untranslatedUses('DestinationRule', files?.spec), [], 'SIMPLE and MUTUAL with files are translated');
  });

  it('proxyless gRPC gets no file-based TLS (it reads TLS from certificate providers only)', () => {
    const t = translated(shop('  trafficPolicy: {tls: {mode: SIMPLE}}\n'), 'grpc');
    assert.equal(tlsOf(cluster(t, `outbound|9090||${SHOP}`)), undefined);
  });

  it("originates TLS for Istio's egress sample: HTTP to port 80 goes out as HTTPS on 443", () => {
    const sample = readFileSync(join(ROOT, 'samples/bookinfo/networking/egress-rule-google-apis.yaml'), 'utf8');
    const t = translated(sample);
    const route = t.routes.find((r) => r.name === '80')?.virtual_hosts?.find((v) => v.name === 'www.googleapis.com:80')?.routes?.[0];
    assert.equal(route?.route?.cluster, 'outbound|443||www.googleapis.com', 'the VirtualService sends port 80 to 443');
    const https = cluster(t, 'outbound|443||www.googleapis.com');
    assert.deepEqual(tlsOf(https), {
      sni: 'www.googleapis.com',
      common_tls_context: { validation_context: { system_root_certs: {} }, alpn_protocols: ['http/1.1'] },
    });
    // An HTTP/1.1 cluster, said explicitly: the port's protocol (HTTPS) alone would not say it.
    const options = https.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS] as unknown as { value: Uint8Array };
    assert.deepEqual([...options.value], [0x1a, 0x02, 0x0a, 0x00], 'explicit_http_config {http_protocol_options {}}');
    assert.equal(https.type, 'STRICT_DNS');
    assert.equal(cluster(t, 'outbound|80||www.googleapis.com').transport_socket, undefined);
  });
});
