/** The networking kinds: semantics resolved at load time, and Istio's validation rules. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFinding } from '../../src/api/finding.js';
import type { Kind } from '../../src/api/kinds.js';
import { loadText } from '../../src/api/load.js';
import type { Resource } from '../../src/api/resource.js';

function loadOne<K extends Kind>(kind: K, yaml: string, options = {}): { resource: Resource<K>; findings: string[] } {
  const result = loadText(yaml, 'test.yaml', options);
  const resource = result.resources.find((r) => r.kind === kind) as unknown as Resource<K> | undefined;
  assert.ok(resource !== undefined, result.findings.map(formatFinding).join('\n'));
  return { resource, findings: result.findings.map((f) => `${f.severity} ${f.code} ${formatFinding(f)}`) };
}

function errorsOf(yaml: string): string[] {
  return loadText(yaml, 'test.yaml').findings.map((f) => `${f.code} ${formatFinding(f)}`);
}

const vs = (spec: string, extra = '') => `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
${extra}spec:
${spec}`;

describe('VirtualService', () => {
  it('resolves hosts against its own namespace, leaving dotted names, wildcards and IPs alone', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [reviews, reviews.other, "*.example.com", 10.0.0.1]
  http:
  - route:
    - destination: {host: ratings}
`));
    assert.deepEqual(resource.spec.hosts, ['reviews.shop.svc.cluster.local', 'reviews.other', '*.example.com', '10.0.0.1']);
    assert.equal(resource.spec.http[0]?.route[0]?.destination.host, 'ratings.shop.svc.cluster.local');
    assert.equal(resource.metadata.namespace, 'shop');
    assert.equal(resource.apiVersion, 'networking.istio.io/v1beta1');
  });

  it('uses the loader default namespace when the resource names none', () => {
    const yaml = vs('  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n').replace('  namespace: shop\n', '');
    const { resource } = loadOne('VirtualService', yaml, { defaultNamespace: 'team-a' });
    assert.equal(resource.metadata.namespace, 'team-a');
    assert.deepEqual(resource.spec.hosts, ['reviews.team-a.svc.cluster.local']);
  });

  it('resolves gateway references: bare, namespaced, legacy FQDN, mesh; match-level too', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [reviews.example.com]
  gateways: [ingress, edge/public, legacy.infra.svc.cluster.local, mesh]
  http:
  - match:
    - gateways: [ingress]
    route:
    - destination: {host: reviews}
`));
    assert.deepEqual(resource.spec.gateways, ['shop/ingress', 'edge/public', 'infra/legacy', 'mesh']);
    assert.deepEqual(resource.spec.http[0]?.match[0]?.gateways, ['shop/ingress']);
  });

  it('reads every match kind; header names are lower-cased, {} means present', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [reviews]
  http:
  - match:
    - uri: {regex: "/api/v[0-9]+/.*"}
      method: {exact: GET}
      scheme: {exact: https}
      authority: {prefix: reviews}
      headers:
        X-User: {prefix: ja}
        x-canary: {}
      withoutHeaders:
        x-debug: {exact: "1"}
      queryParams:
        flag: {exact: ""}
      port: 9080
      sourceLabels: {app: productpage}
      sourceNamespace: shop
      ignoreUriCase: true
      name: api
    route:
    - destination: {host: reviews}
`));
    const m = resource.spec.http[0]?.match[0];
    assert.deepEqual(m?.uri, { kind: 'regex', value: '/api/v[0-9]+/.*' });
    assert.deepEqual(m?.headers, { 'x-user': { kind: 'prefix', value: 'ja' }, 'x-canary': { kind: 'present' } });
    assert.deepEqual(m?.withoutHeaders, { 'x-debug': { kind: 'exact', value: '1' } });
    assert.deepEqual(m?.queryParams, { flag: { kind: 'exact', value: '' } });
    assert.equal(m?.ignoreUriCase, true);
    assert.equal(m?.port, 9080);
    assert.deepEqual(m?.sourceLabels, { app: 'productpage' });
  });

  it('folds retryOn status codes into retriableStatusCodes, as Istio does', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    timeout: 0.5s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,503,connect-failure
`));
    const route = resource.spec.http[0];
    assert.equal(route?.timeout, 500);
    assert.deepEqual(route?.retries, {
      attempts: 3,
      perTryTimeoutMs: 2000,
      retryOn: ['gateway-error', 'connect-failure', 'retriable-status-codes'],
      retriableStatusCodes: [503],
      retryRemoteLocalities: false,
      retryIgnorePreviousHosts: true,
    });
  });

  it('accepts the deprecated spellings with a warning and means what they meant', () => {
    const { resource, findings } = loadOne('VirtualService', vs(`  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
    mirror: {host: httpbin, subset: v2}
    mirrorPercent: 30
    fault:
      delay: {fixedDelay: 5s, percent: 10}
    corsPolicy:
      allowOrigin: ["https://example.com"]
      maxAge: 24h
`));
    const route = resource.spec.http[0];
    assert.deepEqual(route?.mirrors, [{ destination: { host: 'httpbin.shop.svc.cluster.local', subset: 'v2' }, percentage: 30 }]);
    assert.deepEqual(route?.fault?.delay, { fixedDelayMs: 5000, percentage: 10 });
    assert.deepEqual(route?.corsPolicy?.allowOrigins, [{ kind: 'exact', value: 'https://example.com' }]);
    assert.equal(route?.corsPolicy?.maxAgeMs, 86_400_000);
    assert.deepEqual(findings, [
      'warning TRELLIS_CONFIG_DEPRECATED test.yaml:12: spec.http[0].mirrorPercent: mirrorPercent is deprecated; use mirrorPercentage: {value: N}',
      'warning TRELLIS_CONFIG_DEPRECATED test.yaml:14: spec.http[0].fault.delay.percent: percent is deprecated; use percentage: {value: N}',
      'warning TRELLIS_CONFIG_DEPRECATED test.yaml:16: spec.http[0].corsPolicy.allowOrigin: allowOrigin is deprecated; use allowOrigins: [{exact: ...}]',
    ]);
  });

  it('mirrors everything when a mirror has no percentage; a fault without one injects nothing', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin}
    mirrors:
    - destination: {host: httpbin-shadow}
    fault:
      abort: {grpcStatus: UNAVAILABLE}
`));
    assert.deepEqual(resource.spec.http[0]?.mirrors, [{ destination: { host: 'httpbin-shadow.shop.svc.cluster.local' }, percentage: 100 }]);
    assert.deepEqual(resource.spec.http[0]?.fault?.abort, { grpcStatus: 'UNAVAILABLE', percentage: 0 });
  });

  it('reads redirects (301 by default), rewrites, direct responses and header operations', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [reviews]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: new.example.com}
  - match: [{uri: {prefix: /v1}}]
    rewrite: {uri: /v2}
    route:
    - destination: {host: reviews}
      headers:
        request: {set: {x-version: v2}}
    headers:
      response: {remove: [server], add: {x-mesh: trellis}}
  - directResponse: {status: 503, body: {string: unavailable}}
`));
    const [redirect, rewrite, direct] = resource.spec.http;
    assert.deepEqual(redirect?.redirect, { uri: '/new', authority: 'new.example.com', redirectCode: 301 });
    assert.deepEqual(rewrite?.rewrite, { uri: '/v2' });
    assert.deepEqual(rewrite?.route[0]?.headers, { request: { set: { 'x-version': 'v2' }, add: {}, remove: [] } });
    assert.deepEqual(rewrite?.headers, { response: { set: {}, add: { 'x-mesh': 'trellis' }, remove: ['server'] } });
    assert.deepEqual(direct?.directResponse, { status: 503, body: { string: 'unavailable' } });
  });

  it('reads TCP and TLS routes, requiring SNI hosts for TLS', () => {
    const { resource } = loadOne('VirtualService', vs(`  hosts: [db]
  tcp:
  - match: [{port: 27017, destinationSubnets: [10.0.0.0/8]}]
    route:
    - destination: {host: mongo, port: {number: 27017}}
  tls:
  - match: [{sniHosts: [db.example.com], port: 443}]
    route:
    - destination: {host: db.example.com}
`));
    assert.deepEqual(resource.spec.tcp[0]?.route, [{ destination: { host: 'mongo.shop.svc.cluster.local', port: 27017 }, weight: 100 }]);
    assert.deepEqual(resource.spec.tls[0]?.match[0]?.sniHosts, ['db.example.com']);
    assert.deepEqual(errorsOf(vs(`  hosts: [db]
  tls:
  - route:
    - destination: {host: db}
`)), ['TRELLIS_CONFIG_REQUIRED test.yaml:9: spec.tls[0].match: required field is missing']);
  });

  it('reports every error of a resource, each at its own line', () => {
    assert.deepEqual(errorsOf(vs(`  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weight: 10
      extra: 1
    timeout: 1ns
    retries: {attempts: -1}
  - match: [{uri: {regex: "(a)\\\\1"}}]
    redirect: {uri: /x, redirectCode: 200}
`)), [
      'TRELLIS_CONFIG_UNKNOWN_FIELD test.yaml:12: spec.http[0].route[0].extra: unknown field "extra"',
      'TRELLIS_CONFIG_INVALID_DURATION test.yaml:13: spec.http[0].timeout: duration "1ns" must be at least 1ms',
      'TRELLIS_CONFIG_OUT_OF_RANGE test.yaml:14: spec.http[0].retries.attempts: must not be negative (got -1)',
      'TRELLIS_CONFIG_INVALID_REGEX test.yaml:15: spec.http[1].match[0].uri.regex: invalid RE2 regex "(a)\\1": invalid escape sequence: \\1',
      'TRELLIS_CONFIG_OUT_OF_RANGE test.yaml:16: spec.http[1].redirect.redirectCode: must be between 300 and 399 (got 200)',
    ]);
  });
});

describe('DestinationRule', () => {
  const dr = (spec: string) => `apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
${spec}`;

  it('reads load balancing, connection pools, outlier detection and port-level settings', () => {
    const { resource } = loadOne('DestinationRule', dr(`  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, ttl: 0s}
        ringHash: {minimumRingSize: 2048}
      localityLbSetting:
        enabled: true
        failover: [{from: us-east, to: us-west}]
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 250ms, idleTimeout: 0s}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1, h2UpgradePolicy: UPGRADE}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
`));
    const tp = resource.spec.trafficPolicy;
    assert.deepEqual(tp?.loadBalancer?.consistentHash, { httpCookie: { name: 'user', ttl: 0 }, ringHash: { minimumRingSize: 2048 } });
    assert.deepEqual(tp?.connectionPool?.tcp, { maxConnections: 1, connectTimeout: 250, idleTimeout: 0 });
    assert.deepEqual(tp?.outlierDetection, { consecutive5xxErrors: 1, interval: 1000, baseEjectionTime: 180_000, maxEjectionPercent: 100 });
    assert.deepEqual(tp?.portLevelSettings?.[0]?.port, { number: 9080 });
    assert.equal(resource.spec.subsets[0]?.trafficPolicy?.loadBalancer?.simple, 'ROUND_ROBIN');
    assert.deepEqual(resource.spec.exportTo, ['*']);
  });

  it('folds LEAST_CONN, top-level minimumRingSize and consecutiveErrors into their replacements', () => {
    const { resource, findings } = loadOne('DestinationRule', dr(`  trafficPolicy:
    loadBalancer: {simple: LEAST_CONN}
    outlierDetection: {consecutiveErrors: 1}
  subsets:
  - name: sticky
    trafficPolicy:
      loadBalancer:
        consistentHash: {useSourceIp: true, minimumRingSize: 512}
`));
    assert.equal(resource.spec.trafficPolicy?.loadBalancer?.simple, 'LEAST_REQUEST');
    assert.deepEqual(resource.spec.trafficPolicy?.outlierDetection, { consecutiveGatewayErrors: 1 });
    assert.deepEqual(resource.spec.subsets[0]?.trafficPolicy?.loadBalancer?.consistentHash, { useSourceIp: true, ringHash: { minimumRingSize: 512 } });
    assert.equal(findings.length, 3);
    assert.ok(findings.every((f) => f.startsWith('warning TRELLIS_CONFIG_DEPRECATED')));
  });

  it('rejects ISTIO_MUTUAL with user certificates, and locality weights that do not sum to 100', () => {
    assert.deepEqual(errorsOf(dr(`  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: reviews.example.com}
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: {"us-east/*": 60, "us-west/*": 30}
`)), [
      'TRELLIS_CONFIG_CONFLICT test.yaml:8: spec.trafficPolicy.tls.sni: sni cannot be set with mode ISTIO_MUTUAL (the mesh supplies certificates)',
      'TRELLIS_CONFIG_OUT_OF_RANGE test.yaml:13: spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: locality weights must sum to 100 (got 90)',
    ]);
  });
});

describe('Gateway, ServiceEntry, WorkloadEntry, Sidecar', () => {
  it('reads a TLS gateway; protocols are case-insensitive', () => {
    const { resource } = loadOne('Gateway', `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: https}
    hosts: ["shop/*.example.com", "./api.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert, minProtocolVersion: TLSV1_2}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
`);
    assert.equal(resource.spec.servers[0]?.port.protocol, 'HTTPS');
    assert.deepEqual(resource.spec.servers[0]?.hosts, ['shop/*.example.com', './api.example.com']);
    assert.equal(resource.spec.servers[1]?.tls?.httpsRedirect, true);
  });

  it('rejects duplicate server port names', () => {
    assert.deepEqual(errorsOf(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
`), ['TRELLIS_CONFIG_DUPLICATE test.yaml:8: spec.servers[1]: duplicate port name "http" (first at index 0)']);
  });

  it('keeps ServiceEntry hosts as written and reads endpoints as workload entries', () => {
    const { resource } = loadOne('ServiceEntry', `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm-db, namespace: shop}
spec:
  hosts: [mysqldb]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 3306, name: tcp, protocol: TCP}]
  endpoints:
  - address: 127.0.0.1
    ports: {tcp: 13306}
    labels: {app: mysqldb}
    locality: us-east/zone-a
    serviceAccount: db
`);
    assert.deepEqual(resource.spec.hosts, ['mysqldb']);
    assert.deepEqual(resource.spec.endpoints[0], { address: '127.0.0.1', ports: { tcp: 13306 }, labels: { app: 'mysqldb' }, locality: 'us-east/zone-a', serviceAccount: 'db' });
  });

  it('rejects DNS resolution of a wildcard host, and endpoints with a workloadSelector', () => {
    assert.deepEqual(errorsOf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec:
  hosts: ["*.example.com"]
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: both}
spec:
  hosts: [a.example.com]
  endpoints: [{address: 127.0.0.1}]
  workloadSelector: {labels: {app: a}}
`), [
      'TRELLIS_CONFIG_CONFLICT test.yaml:5: spec.hosts[0]: wildcard host "*.example.com" cannot be resolved with resolution DNS; use DYNAMIC_DNS or endpoints',
      'TRELLIS_CONFIG_CONFLICT test.yaml:12: spec: only one of endpoints, workloadSelector may be set (found endpoints and workloadSelector)',
    ]);
  });

  it('reads a WorkloadEntry and a Sidecar', () => {
    const we = loadOne('WorkloadEntry', `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm}
spec:
  address: 127.0.0.2
  labels: {app: reviews, version: v4}
  ports: {http: 19080}
  weight: 3
`).resource;
    assert.deepEqual(we.spec, { address: '127.0.0.2', labels: { app: 'reviews', version: 'v4' }, ports: { http: 19080 }, weight: 3 });
    const sc = loadOne('Sidecar', `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`).resource;
    assert.deepEqual(sc.spec.egress[0]?.hosts, ['./*', 'istio-system/*']);
    assert.equal(sc.spec.outboundTrafficPolicy?.mode, 'REGISTRY_ONLY');
  });
});

describe('envelope', () => {
  it('accepts every served API version and rejects others', () => {
    for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
      assert.equal(loadText(`apiVersion: ${v}\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 127.0.0.1}\n`, 'x.yaml').resources.length, 1, v);
    }
    for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) {
      assert.equal(loadText(`apiVersion: ${v}\nkind: PeerAuthentication\nmetadata: {name: a}\nspec: {}\n`, 'x.yaml').resources.length, 1, v);
    }
    assert.deepEqual(errorsOf('apiVersion: security.istio.io/v1alpha3\nkind: PeerAuthentication\nmetadata: {name: a}\nspec: {}\n'), [
      'TRELLIS_CONFIG_UNSUPPORTED_VERSION test.yaml:1: apiVersion: PeerAuthentication is served as security.istio.io/v1, security.istio.io/v1beta1, not security.istio.io/v1alpha3',
    ]);
  });

  it('loads the valid documents of a file with an invalid one', () => {
    const result = loadText(`apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: Bad_Name}
spec: {ports: [{port: 80}]}
---
`, 'x.yaml');
    assert.deepEqual(result.resources.map((r) => r.kind), ['Namespace']);
    assert.equal(result.resources[0]?.metadata.namespace, '');
    assert.equal(result.findings.length, 1);
  });
});
