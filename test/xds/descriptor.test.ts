/**
 * The xDS descriptor the build writes (descriptor.ts) stands in for the .proto files: the
 * resources a translation makes encode to the same bytes and decode to the same objects
 * with it as with the Root parsed from the protos.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import type { Root } from 'protobufjs';
import { translate, type Translation } from '../../src/control-plane/translate/index.js';
import { DESCRIPTOR_ROOT_TYPES, DESCRIPTOR_SERVICES, descriptorOf } from '../../src/xds/descriptor.js';
import { ADS_SERVICE_NAME, CONVERSION_OPTIONS, DESCRIPTOR_URL, loadXdsProtos, xdsRoot } from '../../src/xds/protos.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { meshOf } from '../control-plane/mesh-fixture.js';
import { bookinfo, nodeAt } from '../control-plane/resilience-fixture.js';

const full = loadXdsProtos();

const NETWORKING = [
  'bookinfo-gateway.yaml', 'destination-rule-all.yaml', 'virtual-service-reviews-jason-v2-v3.yaml',
  'virtual-service-ratings-test-delay.yaml', 'fault-injection-details-v1.yaml', 'egress-rule-google-apis.yaml',
];

function resources(t: Translation): [string, object][] {
  return [
    ...t.listeners.map((m): [string, object] => [TYPE_URLS.LISTENER, m]),
    ...t.routes.map((m): [string, object] => [TYPE_URLS.ROUTE, m]),
    ...t.clusters.map((m): [string, object] => [TYPE_URLS.CLUSTER, m]),
    ...t.endpoints.map((m): [string, object] => [TYPE_URLS.ENDPOINT, m]),
  ];
}

function typeName(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

function encode(root: Root, url: string, message: object): Buffer {
  const type = root.lookupType(typeName(url));
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

function decode(root: Root, url: string, bytes: Buffer): object {
  const type = root.lookupType(typeName(url));
  return type.toObject(type.decode(bytes), CONVERSION_OPTIONS);
}

describe('xds descriptor', () => {
  it('is written by the build and is what xdsRoot() loads', () => {
    assert.ok(existsSync(DESCRIPTOR_URL), 'npm run build writes it');
    assert.notEqual(xdsRoot().lookupService(ADS_SERVICE_NAME), null);
    for (const url of Object.values(TYPE_URLS)) assert.ok(xdsRoot().lookupType(typeName(url)), url);
  });

  it('encodes and decodes translated resources exactly as the full protos do', () => {
    const mesh = meshOf(bookinfo(...NETWORKING));
    let checked = 0;
    for (const kind of ['sidecar', 'router'] as const) {
      const t = translate(mesh, nodeAt(kind, 'r1/z1/s1', kind === 'router' ? { istio: 'ingressgateway' } : { app: 'productpage' }));
      for (const [url, message] of resources(t)) {
        const bytes = encode(full, url, message);
        assert.deepEqual(encode(xdsRoot(), url, message), bytes, `${url} encodes the same`);
        assert.deepEqual(decode(xdsRoot(), url, bytes), decode(full, url, bytes), `${url} decodes the same`);
        checked++;
      }
    }
    assert.ok(checked > 20, `checked ${checked} resources`);
  });

  it('holds the closure of its root types and leaves out the rest of the protos', () => {
    const json = descriptorOf(full, DESCRIPTOR_ROOT_TYPES, DESCRIPTOR_SERVICES);
    const text = JSON.stringify(json);
    assert.match(text, /"HttpConnectionManager"/);
    assert.doesNotMatch(text, /validate\.rules|udpa\.annotations/, 'no annotations');
    assert.doesNotMatch(text, /"FileDescriptorProto"/, 'no descriptor.proto types nothing references');
  });
});
