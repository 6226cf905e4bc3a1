import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { namespaceSpec } from '../../src/api/kubernetes/namespace.js';
import { portProtocol, type ServicePort, serviceSpec } from '../../src/api/kubernetes/service.js';
import type { Schema } from '../../src/api/schema/schema.js';
import { fakeContext, type Report } from './fake-context.js';

function parse<T>(schema: Schema<T>, value: unknown): { out: T | undefined; reports: Report[] } {
  const ctx = fakeContext();
  const out = schema.parse(value, ['spec'], ctx);
  return { out, reports: ctx.reports };
}

describe('Service', () => {
  it('converts a service, filling protocol, targetPort and type', () => {
    const { out, reports } = parse(serviceSpec, { ports: [{ port: 9080, name: 'http' }], selector: { app: 'details' } });
    assert.deepEqual(reports, []);
    assert.deepEqual(out, {
      ports: [{ name: 'http', protocol: 'TCP', port: 9080, targetPort: 9080 }],
      selector: { app: 'details' },
      type: 'ClusterIP',
    });
  });

  it('accepts every Kubernetes ServiceSpec field', () => {
    const { out, reports } = parse(serviceSpec, {
      allocateLoadBalancerNodePorts: true,
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10', 'fd00::10'],
      externalIPs: ['192.0.2.1'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 31000,
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'PreferDualStack',
      loadBalancerClass: 'example.com/lb',
      loadBalancerIP: '192.0.2.2',
      loadBalancerSourceRanges: ['192.0.2.0/24'],
      ports: [
        { name: 'http-web', port: 80, targetPort: 'web', nodePort: 30080, appProtocol: 'http' },
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 },
      ],
      publishNotReadyAddresses: false,
      selector: { app: 'web' },
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      trafficDistribution: 'PreferClose',
      type: 'LoadBalancer',
    });
    assert.deepEqual(reports, []);
    assert.deepEqual(out, {
      ports: [
        { name: 'http-web', protocol: 'TCP', appProtocol: 'http', port: 80, targetPort: 'web', nodePort: 30080 },
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 },
      ],
      selector: { app: 'web' },
      type: 'LoadBalancer',
      clusterIP: '10.96.0.10',
    });
  });

  it('accepts headless and ExternalName services without ports', () => {
    assert.deepEqual(parse(serviceSpec, { clusterIP: 'None', selector: { app: 'db' } }).out, {
      ports: [],
      selector: { app: 'db' },
      type: 'ClusterIP',
      clusterIP: 'None',
    });
    assert.deepEqual(parse(serviceSpec, { type: 'ExternalName', externalName: 'db.example.com' }).out, {
      ports: [],
      selector: {},
      type: 'ExternalName',
      externalName: 'db.example.com',
    });
  });

  it('reads a targetPort of 0 or "" as the service port, as Kubernetes defaults it', () => {
    const { out } = parse(serviceSpec, { ports: [{ name: 'a', port: 80, targetPort: 0 }, { name: 'b', port: 81, targetPort: '' }] });
    assert.deepEqual(out?.ports.map((p) => p.targetPort), [80, 81]);
  });

  it('requires names on several ports, and unique names and ports', () => {
    const { out, reports } = parse(serviceSpec, {
      ports: [{ name: 'http', port: 80 }, { port: 81 }, { name: 'http', port: 82 }, { name: 'other', port: 80 }],
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_DUPLICATE', path: 'spec.ports[2]', message: 'duplicate port name "http" (first at index 0)' },
    ]);
    const r = parse(serviceSpec, { ports: [{ name: 'http', port: 80 }, { port: 81 }, { name: 'other', port: 80 }] });
    assert.deepEqual(r.reports, [
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.ports[1].name', message: 'port name is required when a service has more than one port' },
      { code: 'TRELLIS_CONFIG_DUPLICATE', path: 'spec.ports[2].port', message: 'duplicate port 80/TCP (first at index 0)' },
    ]);
  });

  it('rejects bad ports, target ports and types', () => {
    const { out, reports } = parse(serviceSpec, {
      ports: [{ port: 70000, protocol: 'tcp', targetPort: 'Not_A_Name' }, { name: 'b' }],
      type: 'Internal',
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.ports[0].protocol', message: 'must be one of TCP, UDP, SCTP (got "tcp")' },
      { code: 'TRELLIS_CONFIG_OUT_OF_RANGE', path: 'spec.ports[0].port', message: 'must be between 1 and 65535 (got 70000)' },
      {
        code: 'TRELLIS_CONFIG_INVALID_VALUE',
        path: 'spec.ports[0].targetPort',
        message: '"Not_A_Name" is not a port name (at most 15 lower case letters, digits and "-", with at least one letter)',
      },
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.ports[1].port', message: 'required field is missing' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.type', message: 'must be one of ClusterIP, NodePort, LoadBalancer, ExternalName (got "Internal")' },
    ]);
  });

  it('rejects a service without ports, and ExternalName without a name', () => {
    assert.deepEqual(parse(serviceSpec, { selector: { app: 'a' } }).reports, [
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.ports', message: 'a service needs at least one port, unless it is headless (clusterIP: None) or of type ExternalName' },
    ]);
    assert.deepEqual(parse(serviceSpec, { type: 'ExternalName' }).reports, [
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.externalName', message: 'externalName is required when type is ExternalName' },
    ]);
  });

  it('parses every Service of the bookinfo samples', () => {
    for (const file of ['bookinfo.yaml', 'httpbin.yaml', 'fortio-deploy.yaml']) {
      const text = readFileSync(new URL(`../../../samples/bookinfo/platform/kube/${file}`, import.meta.url), 'utf8');
      const services = parseAllDocuments(text).map((d) => d.toJS() as { kind?: string; spec?: unknown }).filter((d) => d?.kind === 'Service');
      assert.ok(services.length > 0, file);
      for (const svc of services) assert.deepEqual(parse(serviceSpec, svc.spec).reports, [], file);
    }
  });
});

describe('portProtocol', () => {
  const p = (fields: Partial<ServicePort>): ServicePort => ({ protocol: 'TCP', port: 8080, targetPort: 8080, ...fields });

  it('reads the name prefix, case-insensitively', () => {
    const cases: [string, string][] = [
      ['http', 'http'], ['http-web', 'http'], ['HTTP2-x', 'http2'], ['https', 'https'], ['tcp-db', 'tcp'], ['tls', 'tls'],
      ['grpc', 'grpc'], ['grpc-web', 'grpc-web'], ['grpc-web-ui', 'grpc-web'], ['mongo', 'mongo'], ['mysql-main', 'mysql'],
      ['redis', 'redis'], ['udp-x', 'udp'], ['web', 'auto'], ['httpx', 'auto'],
    ];
    for (const [name, expected] of cases) assert.equal(portProtocol(p({ name })), expected, name);
    assert.equal(portProtocol(p({})), 'auto');
  });

  it('prefers appProtocol, including the Kubernetes standard names', () => {
    assert.equal(portProtocol(p({ name: 'tcp', appProtocol: 'HTTP' })), 'http');
    assert.equal(portProtocol(p({ name: 'http', appProtocol: 'kubernetes.io/h2c' })), 'http2');
    assert.equal(portProtocol(p({ name: 'http', appProtocol: 'kubernetes.io/ws' })), 'http');
    assert.equal(portProtocol(p({ name: 'http', appProtocol: 'custom' })), 'auto');
  });

  it('gives udp for UDP ports and tcp for unnamed server-first ports', () => {
    assert.equal(portProtocol(p({ name: 'http', protocol: 'UDP' })), 'udp');
    assert.equal(portProtocol(p({ port: 3306 })), 'tcp');
    assert.equal(portProtocol(p({ name: 'http', port: 3306 })), 'http');
  });
});

describe('Namespace', () => {
  it('accepts an absent spec and finalizers', () => {
    assert.deepEqual(parse(namespaceSpec, undefined), { out: { finalizers: [] }, reports: [] });
    assert.deepEqual(parse(namespaceSpec, { finalizers: ['kubernetes'] }), { out: { finalizers: ['kubernetes'] }, reports: [] });
  });

  it('rejects other fields and wrong types', () => {
    assert.deepEqual(parse(namespaceSpec, { finalizer: ['kubernetes'] }).reports, [
      { code: 'TRELLIS_CONFIG_UNKNOWN_FIELD', path: 'spec.finalizer', message: 'unknown field "finalizer" (did you mean "finalizers"?)' },
    ]);
    assert.deepEqual(parse(namespaceSpec, { finalizers: 'kubernetes' }).reports, [
      { code: 'TRELLIS_CONFIG_WRONG_TYPE', path: 'spec.finalizers', message: 'expected a list, got string "kubernetes"' },
    ]);
  });
});
