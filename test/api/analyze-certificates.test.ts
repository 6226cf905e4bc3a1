/**
 * `analyze` checks the certificate, key and CA files that Gateways and DestinationRules
 * name: real PEM files made at test time pass, missing files, files without PEM data, a
 * key where a certificate belongs and a directory are reported.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyze } from '../../src/api/analyze/index.js';
import { loadText } from '../../src/api/load.js';
import { TestCa, writePair } from '../tls-certs.js';

const readFile = (path: string) => readFileSync(path, 'utf8');

function certificateFindings(yaml: string, read = readFile): string[] {
  const loaded = loadText(yaml, 'tls.yaml');
  assert.deepEqual(loaded.findings.filter((f) => f.severity === 'error'), []);
  return analyze(loaded, { readFile: read }).filter((f) => f.code === 'TRELLIS_ANALYZE_CERTIFICATE_UNREADABLE').map((f) => `${f.line} ${f.path}: ${f.message}`);
}

const gateway = (tls: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: ${tls}
`;

const destinationRule = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop
  trafficPolicy:
    tls: ${tls}
`;

describe('analyze: certificate files', () => {
  let dir = '';
  let server = { cert: '', key: '' };
  let client = { cert: '', key: '' };
  let ca = '';
  let garbage = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-analyze-certs-'));
    const testCa = await TestCa.create();
    server = writePair(dir, 'server', await testCa.issue({ dns: ['shop.example.com'] }));
    client = writePair(dir, 'client', await testCa.issue({ dns: ['client'], client: true }));
    ca = join(dir, 'ca.pem');
    writeFileSync(ca, testCa.cert);
    garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    mkdirSync(join(dir, 'certs.d'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds nothing wrong with readable PEM certificates, keys and CA bundles', () => {
    assert.deepEqual(certificateFindings(gateway(`{mode: MUTUAL, serverCertificate: ${server.cert}, privateKey: ${server.key}, caCertificates: ${ca}}`)), []);
    assert.deepEqual(certificateFindings(destinationRule(`{mode: MUTUAL, clientCertificate: ${client.cert}, privateKey: ${client.key}, caCertificates: ${ca}}`)), []);
  });

  it('reports a missing file, a file without PEM data, a key given as a certificate, and a directory', () => {
    assert.deepEqual(certificateFindings(gateway(`{mode: MUTUAL, serverCertificate: ${server.key}, privateKey: ${garbage}, caCertificates: ${join(dir, 'certs.d')}}`)), [
      `9 spec.servers[0].tls.caCertificates: CA bundle file ${join(dir, 'certs.d')} is a directory; a proxy given this configuration would reject it (NACK) and keep its previous one`,
      `9 spec.servers[0].tls.privateKey: private key file ${garbage} holds no PEM private key; a proxy given this configuration would reject it (NACK) and keep its previous one`,
      `9 spec.servers[0].tls.serverCertificate: certificate file ${server.key} holds no PEM certificate; a proxy given this configuration would reject it (NACK) and keep its previous one`,
    ]);
    assert.deepEqual(certificateFindings(destinationRule(`{mode: SIMPLE, caCertificates: ${join(dir, 'missing.pem')}}`)), [
      `7 spec.trafficPolicy.tls.caCertificates: CA bundle file ${join(dir, 'missing.pem')} does not exist; a proxy given this configuration would reject it (NACK) and keep its previous one`,
    ]);
  });

  it('reports a certificate block that does not parse', () => {
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    const [finding] = certificateFindings(destinationRule(`{mode: SIMPLE, caCertificates: ${broken}}`));
    assert.match(finding ?? '', /CA bundle file .*broken\.pem holds a certificate that cannot be parsed/);
  });

  it('checks only files the proxy reads: not with credentialName, ISTIO_MUTUAL or insecureSkipVerify, nor without a reader', () => {
    const missing = join(dir, 'missing.pem');
    assert.deepEqual(certificateFindings(gateway(`{mode: PASSTHROUGH}`)), []);
    assert.deepEqual(certificateFindings(destinationRule(`{mode: SIMPLE, insecureSkipVerify: true, sni: shop.example.com}`)), []);
    assert.deepEqual(certificateFindings(destinationRule(`{mode: MUTUAL, credentialName: shop-client}`)), []);
    const loaded = loadText(destinationRule(`{mode: SIMPLE, caCertificates: ${missing}}`), 'tls.yaml');
    assert.deepEqual(analyze(loaded).filter((f) => f.code === 'TRELLIS_ANALYZE_CERTIFICATE_UNREADABLE'), [], 'analysis without a reader reads no file');
  });

  it('reads each file once, however many resources name it', () => {
    let reads = 0;
    const counting = (path: string) => {
      reads++;
      return readFile(path);
    };
    certificateFindings(`${destinationRule(`{mode: SIMPLE, caCertificates: ${ca}}`)}---\n${destinationRule(`{mode: SIMPLE, caCertificates: ${ca}}`).replace('name: shop', 'name: shop-2')}`, counting);
    assert.equal(reads, 1);
  });
});
