/**
 * Route tables compiled from what the control plane really sends: translated, encoded to
 * protobuf and decoded again, as the proxy receives it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translate } from '../../src/control-plane/translate/index.js';
import { type ForwardAction, pickTarget, rewritePath } from '../../src/proxy/routing/route-action.js';
import { type RequestInfo, RouteTable } from '../../src/proxy/routing/route-table.js';
import { decodeAny, encodeResource } from '../../src/xds/any.js';
import type { RouteConfiguration__Output } from '../../src/xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { BOOKINFO, meshOf, node } from '../control-plane/mesh-fixture.js';

function table(extra: string, name = '9080', labels: Record<string, string> = {}): RouteTable {
  const t = translate(meshOf(BOOKINFO + extra), node('sidecar', 'default', labels));
  const rc = t.routes.find((r) => r.name === name);
  const encoded = encodeResource(TYPE_URLS.ROUTE, rc as object);
  assert.ok(encoded.ok);
  const decoded = decodeAny<RouteConfiguration__Output>(encoded.any);
  assert.ok(decoded.ok);
  return new RouteTable(decoded.value);
}

function req(authority: string, path: string, headers: string[] = [], method = 'GET'): RequestInfo {
  const q = path.indexOf('?');
  return { method, path: q < 0 ? path : path.slice(0, q), query: q < 0 ? '' : path.slice(q + 1), authority, scheme: 'http', headers };
}

function clusterOf(t: RouteTable, r: RequestInfo): string | undefined {
  const m = t.match(r);
  if (m === undefined) return undefined;
  if (m.action.kind !== 'forward') return m.action.kind;
  return pickTarget(m.action, 0).cluster;
}

const VS = (http: string) => `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
${http}`;

describe('RouteTable', () => {
  it('selects the virtual host by Host, with or without port, short or full name', () => {
    const t = table('');
    for (const host of ['reviews', 'reviews:9080', 'reviews.default', 'reviews.default.svc.cluster.local:9080', 'REVIEWS:9080'.toLowerCase()]) {
      assert.equal(clusterOf(t, req(host, '/')), 'outbound|9080||reviews.default.svc.cluster.local', host);
    }
    assert.equal(clusterOf(t, req('example.com', '/')), 'PassthroughCluster', 'unknown hosts pass through (ALLOW_ANY)');
  });

  it('matches the first route whose conditions hold: headers, query, method, prefix, exact, regex', () => {
    const t = table(VS(`  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{queryParams: {v: {exact: "3"}}, method: {exact: POST}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - match: [{uri: {regex: "/r/[0-9]+"}}, {uri: {exact: /exact}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - match: [{withoutHeaders: {x-debug: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v1}}]
`));
    const c = (r: RequestInfo) => clusterOf(t, r)?.split('|')[2];
    assert.equal(c(req('reviews', '/', ['end-user', 'jason'])), 'v2');
    assert.equal(c(req('reviews', '/x?v=3', [], 'POST')), 'v3');
    assert.equal(c(req('reviews', '/x?v=3', [], 'GET')), 'v1');
    assert.equal(c(req('reviews', '/r/42')), 'v3');
    assert.equal(c(req('reviews', '/r/4a', ['x-debug', '1'])), undefined, 'no route: 404 NR');
    assert.equal(c(req('reviews', '/exact')), 'v3');
    assert.equal(c(req('reviews', '/exact/more')), 'v1');
  });

  it('splits by weight and rewrites paths and hosts', () => {
    const t = table(VS(`  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /v2/, authority: reviews-v2}
    route:
    - {destination: {host: reviews, subset: v1}, weight: 70}
    - {destination: {host: reviews, subset: v2}, weight: 30}
`));
    const m = t.match(req('reviews', '/v1/books'));
    assert.equal(m?.action.kind, 'forward');
    const action = m?.action as ForwardAction;
    assert.equal(pickTarget(action, 0.69).cluster.split('|')[2], 'v1');
    assert.equal(pickTarget(action, 0.71).cluster.split('|')[2], 'v2');
    assert.equal(rewritePath(action, '/v1/books'), '/v2/books');
    assert.equal(action.hostRewrite, 'reviews-v2');
  });

  it('compiles redirects and direct responses', () => {
    const t = table(VS(`  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, redirectCode: 308}
  - match: [{uri: {exact: /health}}]
    directResponse: {status: 200, body: {string: ok}}
`));
    const r = t.match(req('reviews', '/old'))?.action;
    assert.deepEqual(r?.kind === 'redirect' && [r.status, r.path], [308, '/new']);
    const d = t.match(req('reviews', '/health'))?.action;
    assert.deepEqual(d?.kind === 'direct' && [d.status, d.body.toString()], [200, 'ok']);
  });
});
