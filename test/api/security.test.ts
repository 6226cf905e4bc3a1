import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizationPolicySpec, conditionKeyProblem } from '../../src/api/security/authorization-policy.js';
import { peerAuthenticationSpec } from '../../src/api/security/peer-authentication.js';
import { requestAuthenticationSpec } from '../../src/api/security/request-authentication.js';
import type { Schema } from '../../src/api/schema/schema.js';
import { fakeContext, type Report } from './fake-context.js';

function parse<T>(schema: Schema<T>, value: unknown, namespace = 'default'): { out: T | undefined; reports: Report[] } {
  const ctx = fakeContext(namespace);
  const out = schema.parse(value, ['spec'], ctx);
  return { out, reports: ctx.reports };
}

function parseOk<T>(schema: Schema<T>, value: unknown): T {
  const { out, reports } = parse(schema, value);
  assert.deepEqual(reports, []);
  assert.notEqual(out, undefined);
  return out as T;
}

const EMPTY_SOURCE = {
  principals: [], notPrincipals: [], requestPrincipals: [], notRequestPrincipals: [],
  namespaces: [], notNamespaces: [], serviceAccounts: [], notServiceAccounts: [],
  ipBlocks: [], notIpBlocks: [], remoteIpBlocks: [], notRemoteIpBlocks: [],
  trustDomains: [], notTrustDomains: [],
};
const EMPTY_OPERATION = { hosts: [], notHosts: [], ports: [], notPorts: [], methods: [], notMethods: [], paths: [], notPaths: [] };

describe('PeerAuthentication', () => {
  it('converts a workload policy with port-level modes', () => {
    const out = parseOk(peerAuthenticationSpec, {
      selector: { matchLabels: { app: 'reviews' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': {} },
    });
    assert.deepEqual(out, { selector: { app: 'reviews' }, mode: 'STRICT', portLevelMtls: { 8080: 'DISABLE', 9090: 'UNSET' } });
  });

  it('defaults the mode to UNSET and portLevelMtls to empty', () => {
    assert.deepEqual(parseOk(peerAuthenticationSpec, {}), { mode: 'UNSET', portLevelMtls: {} });
    assert.deepEqual(parseOk(peerAuthenticationSpec, { mtls: {} }), { mode: 'UNSET', portLevelMtls: {} });
  });

  it('drops an empty selector: the policy is namespace-wide', () => {
    assert.deepEqual(parseOk(peerAuthenticationSpec, { selector: {}, mtls: { mode: 'PERMISSIVE' } }), { mode: 'PERMISSIVE', portLevelMtls: {} });
  });

  it('rejects an unknown mode', () => {
    const { out, reports } = parse(peerAuthenticationSpec, { mtls: { mode: 'FOO' } });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.mtls.mode', message: 'must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "FOO")' },
    ]);
  });

  it('rejects portLevelMtls without a selector, as Istio', () => {
    for (const selector of [undefined, { matchLabels: {} }]) {
      const { out, reports } = parse(peerAuthenticationSpec, { selector, portLevelMtls: { '8080': { mode: 'DISABLE' } } });
      assert.equal(out, undefined);
      assert.deepEqual(reports, [{ code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec.portLevelMtls', message: 'portLevelMtls requires a selector' }]);
    }
  });

  it('rejects port keys that are not ports', () => {
    const { out, reports } = parse(peerAuthenticationSpec, {
      selector: { matchLabels: { app: 'a' } },
      portLevelMtls: { '0': { mode: 'STRICT' }, http: { mode: 'STRICT' }, '65536': { mode: 'STRICT' } },
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.portLevelMtls["0"]', message: '"0" is not a port number between 1 and 65535' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.portLevelMtls["65536"]', message: '"65536" is not a port number between 1 and 65535' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.portLevelMtls.http', message: '"http" is not a port number between 1 and 65535' },
    ]);
  });

  it('reports a misspelled field', () => {
    const { reports } = parse(peerAuthenticationSpec, { mtl: { mode: 'STRICT' } });
    assert.deepEqual(reports, [{ code: 'TRELLIS_CONFIG_UNKNOWN_FIELD', path: 'spec.mtl', message: 'unknown field "mtl" (did you mean "mtls"?)' }]);
  });
});

describe('AuthorizationPolicy', () => {
  it('converts a policy, filling defaults', () => {
    const out = parseOk(authorizationPolicySpec, {
      selector: { matchLabels: { app: 'httpbin' } },
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'], ipBlocks: ['10.0.0.0/8', '1.2.3.4'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/info*'], ports: ['8000'] } }],
          when: [{ key: 'request.headers[x-token]', values: ['abc'] }],
        },
      ],
    });
    assert.deepEqual(out, {
      selector: { app: 'httpbin' },
      targetRefs: [],
      action: 'ALLOW',
      rules: [
        {
          from: [{ ...EMPTY_SOURCE, principals: ['cluster.local/ns/default/sa/sleep'], ipBlocks: ['10.0.0.0/8', '1.2.3.4'] }],
          to: [{ ...EMPTY_OPERATION, methods: ['GET'], paths: ['/info*'], ports: [8000] }],
          when: [{ key: 'request.headers[x-token]', values: ['abc'], notValues: [] }],
        },
      ],
    });
  });

  it('keeps the empty-policy semantics: spec {} has no rules, rules [{}] has one empty rule', () => {
    assert.deepEqual(parseOk(authorizationPolicySpec, {}), { targetRefs: [], action: 'ALLOW', rules: [] });
    assert.deepEqual(parseOk(authorizationPolicySpec, { action: 'DENY', rules: [{}] }), {
      targetRefs: [],
      action: 'DENY',
      rules: [{ from: [], to: [], when: [] }],
    });
  });

  it('converts a CUSTOM policy with its provider', () => {
    const out = parseOk(authorizationPolicySpec, { action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] });
    assert.equal(out.action, 'CUSTOM');
    assert.deepEqual(out.provider, { name: 'ext-authz' });
  });

  it('folds targetRef into targetRefs and resolves group and namespace', () => {
    assert.deepEqual(parseOk(authorizationPolicySpec, { targetRef: { group: 'core', kind: 'Service', name: 'reviews' } }).targetRefs, [
      { group: '', kind: 'Service', name: 'reviews', namespace: 'default' },
    ]);
    const out = parseOk(authorizationPolicySpec, {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint', namespace: 'default' }],
    });
    assert.deepEqual(out.targetRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint', namespace: 'default' }]);
  });

  it('requires a provider exactly with CUSTOM', () => {
    let r = parse(authorizationPolicySpec, { action: 'CUSTOM', rules: [{}] });
    assert.equal(r.out, undefined);
    assert.deepEqual(r.reports, [{ code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec.action', message: 'action CUSTOM requires a provider' }]);
    r = parse(authorizationPolicySpec, { provider: { name: 'ext-authz' } });
    assert.deepEqual(r.reports, [{ code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec.provider', message: 'provider is only allowed with action CUSTOM (action is ALLOW)' }]);
    r = parse(authorizationPolicySpec, { action: 'CUSTOM', provider: {} });
    assert.deepEqual(r.reports, [{ code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.provider.name', message: 'required field is missing' }]);
  });

  it('rejects selector together with targetRefs', () => {
    const { out, reports } = parse(authorizationPolicySpec, {
      selector: { matchLabels: { app: 'a' } },
      targetRefs: [{ kind: 'Service', name: 'a' }],
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec', message: 'only one of selector, targetRef, targetRefs may be set (found selector and targetRefs)' },
    ]);
  });

  it('rejects unsupported target kinds and cross-namespace targets', () => {
    const { reports } = parse(authorizationPolicySpec, {
      targetRefs: [{ group: 'apps', kind: 'Deployment', name: 'a' }, { kind: 'Service', name: 'b', namespace: 'other' }],
    });
    assert.deepEqual(reports, [
      {
        code: 'TRELLIS_CONFIG_INVALID_VALUE',
        path: 'spec.targetRefs[0].kind',
        message: 'unsupported target kind "apps/Deployment" (supported: Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway, gateway.networking.k8s.io/GatewayClass)',
      },
      {
        code: 'TRELLIS_CONFIG_INVALID_VALUE',
        path: 'spec.targetRefs[1].namespace',
        message: 'cross-namespace target "other" is not supported (the policy is in "default")',
      },
    ]);
  });

  it('reports unsupported condition keys instead of ignoring them', () => {
    const { out, reports } = parse(authorizationPolicySpec, {
      rules: [{ when: [{ key: 'request.header[x-token]', values: ['a'] }, { key: 'source.ip' }] }],
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].when[0].key', message: 'unsupported condition key "request.header[x-token]"' },
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.rules[0].when[1]', message: 'condition "source.ip" must have values or notValues' },
    ]);
  });

  it('accepts every supported condition key', () => {
    const keys = [
      'request.headers[User-Agent]', 'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount',
      'source.trustDomain', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
      'request.auth.claims[groups]', 'request.auth.claims[nested][key]', 'destination.ip', 'destination.port',
      'connection.sni', 'experimental.envoy.filters.network.mysql_proxy[db.table]',
    ];
    for (const key of keys) assert.equal(conditionKeyProblem(key), undefined, key);
    assert.equal(conditionKeyProblem('request.headers[]'), 'condition key "request.headers[]" must be of the form request.headers[<name>]');
    assert.equal(conditionKeyProblem('request.auth.claims'), 'condition key "request.auth.claims" must be of the form request.auth.claims[<claim>]');
  });

  it('checks IP and port condition values', () => {
    const { reports } = parse(authorizationPolicySpec, {
      rules: [{ when: [{ key: 'source.ip', values: ['10.0.0.0/8', 'ten'] }, { key: 'destination.port', notValues: ['http'] }] }],
    });
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].when[0].values[1]', message: '"ten" is not an IP address or CIDR block' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].when[1].notValues[0]', message: '"http" is not a port number between 1 and 65535' },
    ]);
  });

  it('rejects serviceAccounts combined with principals in one source', () => {
    const { out, reports } = parse(authorizationPolicySpec, {
      rules: [{ from: [{ source: { serviceAccounts: ['default/sleep'], principals: ['cluster.local/ns/default/sa/sleep'] } }] }],
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec.rules[0].from[0].source.serviceAccounts', message: 'serviceAccounts cannot be combined with principals in the same source' },
    ]);
  });

  it('rejects malformed service accounts, ports, IP blocks and empty sources', () => {
    const { reports } = parse(authorizationPolicySpec, {
      rules: [
        {
          from: [{ source: { serviceAccounts: ['default/*'], notIpBlocks: ['300.1.1.1'] } }, { source: {} }],
          to: [{ operation: { ports: ['0', 'http', 80] } }],
        },
      ],
    });
    assert.deepEqual(reports, [
      {
        code: 'TRELLIS_CONFIG_INVALID_VALUE',
        path: 'spec.rules[0].from[0].source.serviceAccounts[0]',
        message: '"default/*" is not a service account of the form <namespace>/<name> (wildcards are not allowed)',
      },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].from[0].source.notIpBlocks[0]', message: '"300.1.1.1" is not an IP address or CIDR block' },
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.rules[0].from[1].source', message: 'source must set at least one field (omit "from" to match any source)' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].to[0].operation.ports[0]', message: '"0" is not a port number between 1 and 65535' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.rules[0].to[0].operation.ports[1]', message: '"http" is not a port number between 1 and 65535' },
      { code: 'TRELLIS_CONFIG_WRONG_TYPE', path: 'spec.rules[0].to[0].operation.ports[2]', message: 'expected a string, got number 80' },
    ]);
  });

  it('rejects an unknown action', () => {
    const { reports } = parse(authorizationPolicySpec, { action: 'REJECT' });
    assert.deepEqual(reports, [{ code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.action', message: 'must be one of ALLOW, DENY, AUDIT, CUSTOM (got "REJECT")' }]);
  });
});

describe('RequestAuthentication', () => {
  it('converts a JWT rule, filling defaults and the default token locations', () => {
    const out = parseOk(requestAuthenticationSpec, {
      selector: { matchLabels: { app: 'httpbin' } },
      jwtRules: [{ issuer: 'testing@secure.istio.io', jwksUri: 'https://example.com/jwks.json' }],
    });
    assert.deepEqual(out, {
      selector: { app: 'httpbin' },
      targetRefs: [],
      jwtRules: [
        {
          issuer: 'testing@secure.istio.io',
          audiences: [],
          jwksUri: 'https://example.com/jwks.json',
          fromHeaders: [{ name: 'Authorization', prefix: 'Bearer ' }],
          fromParams: ['access_token'],
          fromCookies: [],
          forwardOriginalToken: false,
          outputClaimToHeaders: [],
          timeoutMs: 5000,
          spaceDelimitedClaims: [],
        },
      ],
    });
  });

  it('keeps explicit locations and converts the timeout', () => {
    const out = parseOk(requestAuthenticationSpec, {
      jwtRules: [
        {
          issuer: 'issuer-foo',
          audiences: ['foo'],
          jwks: '{"keys":[]}',
          fromHeaders: [{ name: 'x-jwt-assertion' }],
          forwardOriginalToken: true,
          outputPayloadToHeader: 'x-jwt-payload',
          outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
          timeout: '10s',
        },
      ],
    });
    const rule = out.jwtRules[0];
    assert.ok(rule !== undefined);
    assert.deepEqual(rule.fromHeaders, [{ name: 'x-jwt-assertion', prefix: '' }]);
    assert.deepEqual(rule.fromParams, []);
    assert.equal(rule.forwardOriginalToken, true);
    assert.equal(rule.timeoutMs, 10000);
    assert.equal(rule.jwks, '{"keys":[]}');
    assert.deepEqual(rule.outputClaimToHeaders, [{ header: 'x-sub', claim: 'sub' }]);
  });

  it('rejects jwksUri with jwks, and a jwksUri that is not http(s)', () => {
    let r = parse(requestAuthenticationSpec, { jwtRules: [{ issuer: 'i', jwksUri: 'https://a/jwks', jwks: '{}' }] });
    assert.equal(r.out, undefined);
    assert.deepEqual(r.reports, [{ code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec.jwtRules[0]', message: 'only one of jwksUri, jwks may be set (found jwksUri and jwks)' }]);
    r = parse(requestAuthenticationSpec, { jwtRules: [{ issuer: 'i', jwksUri: 'ftp://example.com/jwks' }] });
    assert.deepEqual(r.reports, [{ code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.jwtRules[0].jwksUri', message: 'jwksUri "ftp://example.com/jwks" is not an http or https URL' }]);
  });

  it('requires a non-empty issuer and complete claim-to-header entries', () => {
    const { out, reports } = parse(requestAuthenticationSpec, {
      jwtRules: [{ audiences: ['a'] }, { issuer: '', outputClaimToHeaders: [{ header: 'bad header' }] }],
    });
    assert.equal(out, undefined);
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.jwtRules[0].issuer', message: 'required field is missing' },
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.jwtRules[1].issuer', message: 'issuer must not be empty' },
      { code: 'TRELLIS_CONFIG_INVALID_VALUE', path: 'spec.jwtRules[1].outputClaimToHeaders[0].header', message: '"bad header" is not a valid header name' },
      { code: 'TRELLIS_CONFIG_REQUIRED', path: 'spec.jwtRules[1].outputClaimToHeaders[0].claim', message: 'required field is missing' },
    ]);
  });

  it('rejects a bad timeout and selector with targetRef', () => {
    const { reports } = parse(requestAuthenticationSpec, {
      selector: { matchLabels: { app: 'a' } },
      targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
      jwtRules: [{ issuer: 'i', timeout: '5' }],
    });
    assert.deepEqual(reports, [
      { code: 'TRELLIS_CONFIG_INVALID_DURATION', path: 'spec.jwtRules[0].timeout', message: '"5" is not a duration (expected e.g. "7s", "0.5s", "100ms", "1h")' },
    ]);
    const r = parse(requestAuthenticationSpec, {
      selector: { matchLabels: { app: 'a' } },
      targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
    });
    assert.deepEqual(r.reports, [
      { code: 'TRELLIS_CONFIG_CONFLICT', path: 'spec', message: 'only one of selector, targetRef, targetRefs may be set (found selector and targetRef)' },
    ]);
  });
});
