/**
 * The Bookinfo services' outbound client: through `HTTP_PROXY` in absolute form with the
 * Host header the sidecar routes on, directly otherwise, `NO_PROXY`, timeouts and
 * connection failures as results; and where the service URLs come from.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { MeshClient } from '../../examples/bookinfo/src/shared/mesh-client.js';
import { parseProxy, proxyConfigFromEnv, proxyFor } from '../../examples/bookinfo/src/shared/proxy-config.js';
import { serviceUrl } from '../../examples/bookinfo/src/shared/service-url.js';
import { serve, startStub } from './bookinfo-fixture.js';

describe('Bookinfo mesh client', () => {
  it('sends through the proxy in absolute form with the Host of the URL', async (t) => {
    const proxy = await startStub(() => ({ status: 200, json: { via: 'proxy' } }));
    t.after(() => proxy.close());
    const client = MeshClient.fromEnv({ HTTP_PROXY: proxy.url });
    const reply = await client.fetch('http://reviews:9080/reviews/0?x=1', { headers: { 'x-request-id': 'abc', 'end-user': 'jason' }, timeoutMs: 5_000 });
    assert.deepEqual([reply.status, reply.error, JSON.parse(reply.body)], [200, null, { via: 'proxy' }]);
    const [seen] = proxy.requests;
    assert.equal(seen?.method, 'GET');
    assert.equal(seen?.target, 'http://reviews:9080/reviews/0?x=1');
    assert.equal(seen?.headers.host, 'reviews:9080');
    assert.equal(seen?.headers['x-request-id'], 'abc');
    assert.equal(seen?.headers['end-user'], 'jason');

    await client.fetch('http://details/details/1', { timeoutMs: 5_000 });
    assert.equal(proxy.requests[1]?.target, 'http://details/details/1', 'port 80 is implied');
    assert.equal(proxy.requests[1]?.headers.host, 'details');

    await client.fetch('http://ratings:9080/ratings/2', { method: 'POST', body: '{"Reviewer1":3}', headers: { 'content-type': 'application/json' }, timeoutMs: 5_000 });
    const post = proxy.requests[2];
    assert.deepEqual([post?.method, post?.target, post?.body, post?.headers['content-length']], ['POST', 'http://ratings:9080/ratings/2', '{"Reviewer1":3}', '15']);
  });

  it('goes directly, in origin form, without a proxy or for a NO_PROXY host', async (t) => {
    const server = await startStub(() => ({ status: 201, json: {} }));
    t.after(() => server.close());
    const direct = new MeshClient();
    const reply = await direct.fetch(`${server.url}/details/0?a=b`, { timeoutMs: 5_000 });
    assert.equal(reply.status, 201);
    assert.equal(server.requests[0]?.target, '/details/0?a=b');
    assert.equal(server.requests[0]?.headers.host, `127.0.0.1:${server.port}`);

    // A proxy that would answer 502: NO_PROXY must keep the call away from it.
    const proxy = await startStub(() => ({ status: 502 }));
    t.after(() => proxy.close());
    const bypassing = MeshClient.fromEnv({ HTTP_PROXY: proxy.url, NO_PROXY: 'localhost, 127.0.0.1' });
    assert.equal((await bypassing.fetch(`${server.url}/x`, { timeoutMs: 5_000 })).status, 201);
    assert.equal(server.requests[1]?.target, '/x');
    assert.equal(proxy.requests.length, 0);
  });

  it('resolves with error "timeout" when the answer does not come in time', async (t) => {
    const stalled = await startStub(() => 'stall');
    t.after(() => stalled.close());
    const start = performance.now();
    const reply = await new MeshClient().fetch(`${stalled.url}/reviews/0`, { timeoutMs: 200 });
    const elapsed = performance.now() - start;
    assert.deepEqual([reply.status, reply.error], [0, 'timeout']);
    assert.ok(elapsed >= 195 && elapsed < 3_000, `timed out after ${Math.round(elapsed)} ms`);
    await stalled.received(1);
  });

  it('resolves with the socket error when nothing listens, or the body is cut', async (t) => {
    const gone = await serve(createServer());
    await gone.close();
    const refused = await new MeshClient().fetch(`${gone.url}/`, { timeoutMs: 5_000 });
    assert.deepEqual([refused.status, refused.error], [0, 'ECONNREFUSED']);

    const cut = await serve(createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.destroy());
    }));
    t.after(() => cut.close());
    const reply = await new MeshClient().fetch(`${cut.url}/`, { timeoutMs: 5_000 });
    assert.equal(reply.status, 0);
    assert.ok(reply.error !== null && reply.error !== 'timeout', `error ${String(reply.error)}`);

    const unsupported = await new MeshClient().fetch('https://reviews:9080/', { timeoutMs: 5_000 });
    assert.deepEqual([unsupported.status, unsupported.error], [0, 'unsupported scheme https:']);
  });

  it('reads HTTP_PROXY and NO_PROXY as curl and requests do', () => {
    assert.deepEqual(proxyConfigFromEnv({}), { proxy: null, noProxy: [] });
    assert.deepEqual(proxyConfigFromEnv({ HTTP_PROXY: 'http://127.0.0.1:15001' }).proxy, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(proxyConfigFromEnv({ http_proxy: '127.0.0.1:15001' }).proxy, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(proxyConfigFromEnv({ HTTP_PROXY: 'http://[::1]:15001', http_proxy: 'http://ignored:1' }).proxy, { host: '::1', port: 15001 });
    assert.deepEqual(parseProxy('http://sidecar'), { host: 'sidecar', port: 80 });
    assert.throws(() => parseProxy('https://127.0.0.1:15001'), /only an http:\/\/ proxy is supported/);
    assert.throws(() => parseProxy('http://[bad'), /is not a URL/);

    const config = proxyConfigFromEnv({ HTTP_PROXY: 'http://127.0.0.1:15001', NO_PROXY: ' .svc.cluster.local,Localhost:8080 ,[::1]' });
    assert.deepEqual(config.noProxy, ['svc.cluster.local', 'localhost', '::1']);
    assert.equal(proxyFor(config, 'reviews'), config.proxy);
    assert.equal(proxyFor(config, 'reviews.default.svc.cluster.local'), null);
    assert.equal(proxyFor(config, 'svc.cluster.local'), null);
    assert.equal(proxyFor(config, 'notsvc.cluster.local'), config.proxy);
    assert.equal(proxyFor(config, 'LOCALHOST'), null);
    assert.equal(proxyFor(config, '[::1]'), null);
    assert.equal(proxyFor(proxyConfigFromEnv({ HTTP_PROXY: 'http://p:1', NO_PROXY: '*' }), 'reviews'), null);
  });

  it('takes service URLs from <NAME>_URL, else the original variables, else http://<name>:9080', () => {
    assert.equal(serviceUrl({}, 'reviews'), 'http://reviews:9080');
    assert.equal(serviceUrl({ REVIEWS_URL: 'http://127.0.0.1:1234/' }, 'reviews'), 'http://127.0.0.1:1234');
    assert.equal(serviceUrl({ SERVICES_DOMAIN: 'bookinfo.svc.cluster.local' }, 'details'), 'http://details.bookinfo.svc.cluster.local:9080');
    assert.equal(serviceUrl({ RATINGS_HOSTNAME: 'ratings-v2', RATINGS_SERVICE_PORT: '9090' }, 'ratings'), 'http://ratings-v2:9090');
  });
});
