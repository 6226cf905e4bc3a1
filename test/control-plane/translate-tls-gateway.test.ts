/**
 * Gateway TLS: HTTPS and TLS servers terminated with a DownstreamTlsContext per server,
 * TLS passthrough beside them, and the HTTP→HTTPS redirect, per the control plane / proxy
 * TLS contract.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { untranslatedUses } from '../../src/control-plane/translate/coverage.js';
import { consistencyProblems, translate, type Translation } from '../../src/control-plane/translate/index.js';
import { encodeResource } from '../../src/xds/any.js';
import type { FilterChain } from '../../src/xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { Listener } from '../../src/xds/generated/envoy/config/listener/v3/Listener.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { BOOKINFO, meshOf, node } from './mesh-fixture.js';

const DOWNSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const PRODUCTPAGE = 'outbound|9080||productpage.default.svc.cluster.local';
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };

const gateway = (name: string, servers: string) => `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}}
spec:
  selector: {istio: ingressgateway}
  servers:
${servers}`;

const virtualService = (name: string, hosts: string, gateways: string, body: string) => `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: ${hosts}
  gateways: ${gateways}
${body}`;

const HTTP_TO_PRODUCTPAGE = '  http:\n  - route: [{destination: {host: productpage, port: {number: 9080}}}]\n';
const HTTP_TO_REVIEWS = '  http:\n  - route: [{destination: {host: reviews, port: {number: 9080}}}]\n';

function gatewayTranslation(extra: string): Translation {
  const t = translate(meshOf(BOOKINFO + extra), node('router', 'istio-system', { istio: 'ingressgateway' }));
  assert.deepEqual(consistencyProblems(t), []);
  for (const l of t.listeners) {
    const encoded = encodeResource(TYPE_URLS.LISTENER, l);
    assert.ok(encoded.ok, encoded.ok ? '' : `${l.name}: ${encoded.error}`);
  }
  return t;
}

function listener(t: Translation, port: number): Listener {
  const l = t.listeners.find((x) => x.name === `0.0.0.0_${port}`);
  assert.ok(l !== undefined, `listener on ${port}; have ${t.listeners.map((x) => x.name).join(', ')}`);
  return l;
}

function chain(l: Listener, name: string): FilterChain {
  const c = l.filter_chains?.find((x) => x.name === name);
  assert.ok(c !== undefined, `chain ${name}; have ${l.filter_chains?.map((x) => x.name).join(', ')}`);
  return c;
}

function downstreamOf(c: FilterChain): Record<string, unknown> {
  assert.equal(c.transport_socket?.name, 'envoy.transport_sockets.tls');
  const { '@type': type, ...context } = c.transport_socket?.typed_config as Record<string, unknown>;
  assert.equal(type, DOWNSTREAM);
  return context;
}

function filterConfig(c: FilterChain): Record<string, unknown> {
  return c.filters?.[0]?.typed_config as Record<string, unknown>;
}

function routesOf(t: Translation, name: string): [string | undefined, string[] | undefined, string | undefined][] {
  const rc = t.routes.find((r) => r.name === name);
  assert.ok(rc !== undefined, `route configuration ${name}; have ${t.routes.map((r) => r.name).join(', ')}`);
  return (rc.virtual_hosts ?? []).map((v) => [v.name, v.domains, v.routes?.[0]?.route?.cluster]);
}

const SIMPLE_SERVER = `  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/bookinfo.pem, privateKey: /etc/certs/bookinfo.key}
`;

describe('translate: gateway TLS termination', () => {
  it('HTTPS SIMPLE: TLS inspector, a chain matched on the server\'s hosts, its certificate, h2 and http/1.1, and routes of its own', () => {
    const t = gatewayTranslation(gateway('secure', SIMPLE_SERVER) + virtualService('bookinfo', '[bookinfo.example.com]', '[secure]', HTTP_TO_PRODUCTPAGE));
    const l = listener(t, 443);
    assert.deepEqual(l.listener_filters, [TLS_INSPECTOR]);
    assert.equal(l.filter_chains?.length, 1);
    const c = chain(l, 'default/secure/https');
    assert.deepEqual(c.filter_chain_match, { server_names: ['bookinfo.example.com'] });
    assert.deepEqual(downstreamOf(c), {
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        tls_certificates: [{ certificate_chain: { filename: '/etc/certs/bookinfo.pem' }, private_key: { filename: '/etc/certs/bookinfo.key' } }],
        alpn_protocols: ['h2', 'http/1.1'],
      },
    });
    assert.equal(c.filters?.[0]?.name, 'envoy.filters.network.http_connection_manager');
    assert.deepEqual(filterConfig(c).rds, { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'https.443.https.secure.default' });
    assert.deepEqual(routesOf(t, 'https.443.https.secure.default'), [['bookinfo.example.com:443', ['bookinfo.example.com', 'bookinfo.example.com:443'], PRODUCTPAGE]]);
  });

  it('several HTTPS servers on one port: a chain each, with its own certificate and only its own hosts\' routes', () => {
    const t = gatewayTranslation(
      gateway('secure', SIMPLE_SERVER + `  - port: {number: 443, name: https-reviews, protocol: HTTPS}
    hosts: [reviews.example.com]
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/reviews.pem, privateKey: /etc/certs/reviews.key}
`) +
        virtualService('bookinfo', '[bookinfo.example.com]', '[secure]', HTTP_TO_PRODUCTPAGE) +
        virtualService('reviews-public', '[reviews.example.com]', '[secure]', HTTP_TO_REVIEWS),
    );
    const l = listener(t, 443);
    assert.deepEqual(l.filter_chains?.map((c) => [c.name, c.filter_chain_match?.server_names]), [
      ['default/secure/https', ['bookinfo.example.com']],
      ['default/secure/https-reviews', ['reviews.example.com']],
    ]);
    const certs = (c: FilterChain) => ((downstreamOf(c).common_tls_context as { tls_certificates: { certificate_chain: { filename: string } }[] }).tls_certificates.map((x) => x.certificate_chain.filename));
    assert.deepEqual(certs(chain(l, 'default/secure/https-reviews')), ['/etc/certs/reviews.pem']);
    assert.deepEqual(routesOf(t, 'https.443.https.secure.default').map((v) => v[0]), ['bookinfo.example.com:443']);
    assert.deepEqual(routesOf(t, 'https.443.https-reviews.secure.default'), [['reviews.example.com:443', ['reviews.example.com', 'reviews.example.com:443'], 'outbound|9080||reviews.default.svc.cluster.local']]);
  });

  it('MUTUAL requires a client certificate verified against the CA (and SANs); OPTIONAL_MUTUAL verifies one if sent; versions and ciphers as given', () => {
    const t = gatewayTranslation(gateway('mtls', `  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls:
      mode: MUTUAL
      serverCertificate: /etc/certs/server.pem
      privateKey: /etc/certs/server.key
      caCertificates: /etc/certs/clients-ca.pem
      subjectAltNames: [client.example.com]
      minProtocolVersion: TLSV1_3
      maxProtocolVersion: TLSV1_3
      cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
  - port: {number: 8443, name: https-optional, protocol: HTTPS}
    hosts: ["*"]
    tls:
      mode: OPTIONAL_MUTUAL
      tlsCertificates:
      - {serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}
      - {serverCertificate: /etc/certs/ecdsa.pem, privateKey: /etc/certs/ecdsa.key}
      caCertificates: /etc/certs/clients-ca.pem
      minProtocolVersion: TLS_AUTO
`) + virtualService('bookinfo', '["*"]', '[mtls]', HTTP_TO_PRODUCTPAGE));
    const mutual = chain(listener(t, 443), 'default/mtls/https');
    assert.deepEqual(mutual.filter_chain_match, { server_names: ['*.example.com'] });
    assert.deepEqual(downstreamOf(mutual), {
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: ['ECDHE-ECDSA-AES256-GCM-SHA384'] },
        tls_certificates: [{ certificate_chain: { filename: '/etc/certs/server.pem' }, private_key: { filename: '/etc/certs/server.key' } }],
        validation_context: { trusted_ca: { filename: '/etc/certs/clients-ca.pem' }, match_subject_alt_names: [{ exact: 'client.example.com' }] },
        alpn_protocols: ['h2', 'http/1.1'],
      },
      require_client_certificate: { value: true },
    });
    const optional = chain(listener(t, 8443), 'default/mtls/https-optional');
    assert.equal(optional.filter_chain_match, undefined, "host '*': no SNI match, the chain takes any name");
    assert.deepEqual(downstreamOf(optional), {
      common_tls_context: {
        tls_params: {},
        tls_certificates: [
          { certificate_chain: { filename: '/etc/certs/rsa.pem' }, private_key: { filename: '/etc/certs/rsa.key' } },
          { certificate_chain: { filename: '/etc/certs/ecdsa.pem' }, private_key: { filename: '/etc/certs/ecdsa.key' } },
        ],
        validation_context: { trusted_ca: { filename: '/etc/certs/clients-ca.pem' } },
        alpn_protocols: ['h2', 'http/1.1'],
      },
    });
    assert.deepEqual(routesOf(t, 'https.8443.https-optional.mtls.default').map((v) => v[0]), ['*:8443']);
  });

  it('TLS SIMPLE terminates, then proxies to the VirtualService tcp route (no ALPN); PASSTHROUGH beside it stays SNI routing', () => {
    const t = gatewayTranslation(
      gateway('tls', `  - port: {number: 443, name: tls-db, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/db.pem, privateKey: /etc/certs/db.key}
  - port: {number: 443, name: tls-pass, protocol: TLS}
    hosts: [ratings.example.com]
    tls: {mode: PASSTHROUGH}
`) +
        virtualService('db', '[db.example.com]', '[tls]', '  tcp:\n  - match: [{port: 443}]\n    route: [{destination: {host: mongodb, port: {number: 27017}}}]\n') +
        virtualService('ratings-pass', '[ratings.example.com]', '[tls]', '  tls:\n  - match: [{port: 443, sniHosts: [ratings.example.com]}]\n    route: [{destination: {host: ratings, port: {number: 9080}}}]\n'),
    );
    const l = listener(t, 443);
    assert.deepEqual(l.listener_filters, [TLS_INSPECTOR]);
    const terminated = chain(l, 'default/tls/tls-db');
    assert.deepEqual(terminated.filter_chain_match, { server_names: ['db.example.com'] });
    assert.equal((downstreamOf(terminated).common_tls_context as Record<string, unknown>).alpn_protocols, undefined);
    assert.equal(terminated.filters?.[0]?.name, 'envoy.filters.network.tcp_proxy');
    assert.equal(filterConfig(terminated).cluster, 'outbound|27017||mongodb.default.svc.cluster.local');
    const passthrough = chain(l, 'default/ratings-pass');
    assert.deepEqual(passthrough.filter_chain_match, { server_names: ['ratings.example.com'] });
    assert.equal(passthrough.transport_socket, undefined, 'passthrough: the backend terminates');
    assert.equal(filterConfig(passthrough).cluster, 'outbound|9080||ratings.default.svc.cluster.local');
  });

  it('ISTIO_MUTUAL and credentialName servers are not translated yet: no chain, and a warning naming them', () => {
    const yaml = BOOKINFO + gateway('later', `  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 443, name: https-mesh, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: ISTIO_MUTUAL}
`);
    const t = translate(meshOf(yaml), node('router', 'istio-system', { istio: 'ingressgateway' }));
    assert.deepEqual(listener(t, 443).filter_chains, []);
    assert.deepEqual(t.routes, []);
    const gw = meshOf(yaml).gateways[0];
    assert.deepEqual(untranslatedUses('Gateway', gw?.spec).map((u) => [u.field, u.path.join('.')]), [
      ['Gateway.spec.servers[].tls.credentialName', 'spec.servers.0.tls.credentialName'],
      ['Gateway.spec.servers[].tls.mode', 'spec.servers.1.tls.mode'],
    ]);
    const files = meshOf(BOOKINFO + gateway('secure', SIMPLE_SERVER)).gateways[0];
    assert.deepEqual(untranslatedUses('Gateway', files?.spec), [], 'SIMPLE with files is translated');
  });
});

describe('translate: HTTP to HTTPS redirect', () => {
  it('tls.httpsRedirect makes the server\'s virtual hosts require TLS; other servers\' hosts do not', () => {
    const t = gatewayTranslation(
      gateway('web', `  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [bookinfo.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 8080, name: http-plain, protocol: HTTP}
    hosts: [plain.example.com]
`) +
        virtualService('bookinfo', '[bookinfo.example.com]', '[web]', HTTP_TO_PRODUCTPAGE) +
        virtualService('plain', '[plain.example.com]', '[web]', HTTP_TO_REVIEWS),
    );
    const rc = t.routes.find((r) => r.name === 'http.8080');
    assert.deepEqual(rc?.virtual_hosts?.map((v) => [v.name, v.require_tls]), [
      ['bookinfo.example.com:8080', 'ALL'],
      ['plain.example.com:8080', undefined],
    ]);
    const encoded = encodeResource(TYPE_URLS.ROUTE, rc);
    assert.ok(encoded.ok, encoded.ok ? '' : encoded.error);
  });
});
