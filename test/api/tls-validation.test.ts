/** TLS settings of Gateway servers and DestinationRules: Istio's rules, and absolute certificate paths. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFinding } from '../../src/api/finding.js';
import { loadText } from '../../src/api/load.js';

function findingsOf(yaml: string): string[] {
  return loadText(yaml, 'test.yaml').findings.map((f) => `${f.code} ${formatFinding(f)}`);
}

const gateway = (tls: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls:
${tls}`;

const destinationRule = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop
  trafficPolicy:
    tls:
${tls}`;

describe('Gateway server TLS', () => {
  it('accepts SIMPLE and MUTUAL with files, tlsCertificates, or a credentialName instead of files', () => {
    for (const tls of [
      '      {mode: SIMPLE, serverCertificate: /etc/certs/a.pem, privateKey: /etc/certs/a.key}\n',
      '      {mode: MUTUAL, serverCertificate: /etc/certs/a.pem, privateKey: /etc/certs/a.key, caCertificates: /etc/certs/ca.pem}\n',
      '      {mode: OPTIONAL_MUTUAL, tlsCertificates: [{serverCertificate: /a.pem, privateKey: /a.key}], caCertificates: /ca.pem}\n',
      '      {mode: MUTUAL, credentialName: shop-cert}\n',
      '      {mode: SIMPLE, credentialNames: [shop-rsa, shop-ecdsa]}\n',
      '      {mode: PASSTHROUGH}\n',
    ]) {
      assert.deepEqual(findingsOf(gateway(tls)), [], tls);
    }
  });

  it('SIMPLE needs a certificate and its key; MUTUAL also a CA for client certificates', () => {
    assert.deepEqual(findingsOf(gateway('      mode: SIMPLE\n')), [
      'TRELLIS_CONFIG_REQUIRED test.yaml:9: spec.servers[0].tls.serverCertificate: mode SIMPLE needs a server certificate (serverCertificate and privateKey, tlsCertificates, or credentialName)',
      "TRELLIS_CONFIG_REQUIRED test.yaml:9: spec.servers[0].tls.privateKey: mode SIMPLE needs the server certificate's private key (privateKey)",
    ]);
    assert.deepEqual(findingsOf(gateway('      mode: MUTUAL\n      serverCertificate: /etc/certs/a.pem\n      privateKey: /etc/certs/a.key\n')), [
      'TRELLIS_CONFIG_REQUIRED test.yaml:9: spec.servers[0].tls.caCertificates: mode MUTUAL needs a CA bundle to verify client certificates (caCertificates)',
    ]);
    assert.deepEqual(findingsOf(gateway('      mode: SIMPLE\n      tlsCertificates:\n      - {serverCertificate: /etc/certs/a.pem}\n')), [
      "TRELLIS_CONFIG_REQUIRED test.yaml:12: spec.servers[0].tls.tlsCertificates[0].privateKey: mode SIMPLE needs the certificate's private key",
    ]);
  });

  it('rejects relative certificate paths, with a hint, and a maximum version below the minimum', () => {
    assert.deepEqual(findingsOf(gateway('      mode: SIMPLE\n      serverCertificate: certs/a.pem\n      privateKey: /etc/certs/a.key\n')), [
      'TRELLIS_CONFIG_INVALID_VALUE test.yaml:11: spec.servers[0].tls.serverCertificate: "certs/a.pem" is not an absolute path; the proxy reads it from its own working directory, not the configuration\'s: write the full path (e.g. /etc/certs/certs/a.pem)',
    ]);
    assert.deepEqual(findingsOf(gateway('      mode: PASSTHROUGH\n      minProtocolVersion: TLSV1_3\n      maxProtocolVersion: TLSV1_2\n')), [
      'TRELLIS_CONFIG_INVALID_VALUE test.yaml:12: spec.servers[0].tls.maxProtocolVersion: maxProtocolVersion TLSV1_2 is below minProtocolVersion TLSV1_3',
    ]);
  });
});

describe('DestinationRule TLS', () => {
  it('accepts SIMPLE without files (system roots), MUTUAL with the client certificate, and credentialName alone', () => {
    for (const tls of [
      '      {mode: SIMPLE}\n',
      '      {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, subjectAltNames: [shop.example.com], sni: shop.example.com}\n',
      '      {mode: MUTUAL, clientCertificate: /etc/certs/c.pem, privateKey: /etc/certs/c.key}\n',
      '      {mode: MUTUAL, credentialName: shop-client}\n',
      '      {mode: SIMPLE, insecureSkipVerify: true}\n',
      '      {mode: ISTIO_MUTUAL}\n',
    ]) {
      assert.deepEqual(findingsOf(destinationRule(tls)), [], tls);
    }
  });

  it('MUTUAL needs the client certificate and key unless credentialName gives them', () => {
    assert.deepEqual(findingsOf(destinationRule('      mode: MUTUAL\n      caCertificates: /etc/certs/ca.pem\n')), [
      'TRELLIS_CONFIG_REQUIRED test.yaml:7: spec.trafficPolicy.tls.clientCertificate: mode MUTUAL needs the client certificate (clientCertificate and privateKey, or credentialName)',
      "TRELLIS_CONFIG_REQUIRED test.yaml:7: spec.trafficPolicy.tls.privateKey: mode MUTUAL needs the client certificate's private key (privateKey)",
    ]);
  });

  it('rejects files beside credentialName, a CA or SANs with insecureSkipVerify, and relative paths', () => {
    assert.deepEqual(findingsOf(destinationRule('      {mode: MUTUAL, credentialName: shop-client, clientCertificate: /etc/certs/c.pem}\n')), [
      'TRELLIS_CONFIG_CONFLICT test.yaml:8: spec.trafficPolicy.tls.clientCertificate: clientCertificate cannot be set with credentialName (the certificates come from the secret)',
    ]);
    assert.deepEqual(findingsOf(destinationRule('      {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /etc/certs/ca.pem}\n')), [
      'TRELLIS_CONFIG_CONFLICT test.yaml:8: spec.trafficPolicy.tls.caCertificates: caCertificates cannot be set with insecureSkipVerify: true (nothing is verified)',
    ]);
    assert.deepEqual(findingsOf(destinationRule('      {mode: SIMPLE, caCertificates: ./ca.pem}\n')), [
      'TRELLIS_CONFIG_INVALID_VALUE test.yaml:8: spec.trafficPolicy.tls.caCertificates: "./ca.pem" is not an absolute path; the proxy reads it from its own working directory, not the configuration\'s: write the full path (e.g. /etc/certs/ca.pem)',
    ]);
  });
});
