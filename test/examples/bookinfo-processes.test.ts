/**
 * The Bookinfo services as the local mesh runs them: four processes started from the
 * build (`node dist/examples/bookinfo/src/<name>.js`) on their own ports, each reaching the
 * others only through `HTTP_PROXY` with the default `http://<service>:9080` URLs. A test
 * proxy plays the sidecars, routing by Host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startMeshProxy, startProcess, stars, type Process, type Stub } from './bookinfo-fixture.js';

describe('Bookinfo services as processes behind a proxy', { timeout: 60_000 }, () => {
  const routes = new Map<string, number>();
  let proxy: Stub;
  const procs = new Map<string, Process>();

  before(async () => {
    proxy = await startMeshProxy(routes);
    const env = { HTTP_PROXY: proxy.url };
    const started = await Promise.allSettled([
      startProcess('details', env),
      startProcess('ratings', env),
      startProcess('reviews', { ...env, VERSION: 'v3' }),
      startProcess('productpage', env),
    ]);
    ['details', 'ratings', 'reviews', 'productpage'].forEach((name, i) => {
      const s = started[i];
      if (s?.status === 'fulfilled') {
        procs.set(name, s.value);
        routes.set(name, Number(new URL(s.value.url).port));
      }
    });
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  });

  after(async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await proxy.close();
  });

  it('serves the product page with red stars, every call going through the proxy in absolute form', async () => {
    const pp = procs.get('productpage');
    assert.ok(pp);
    const page = await http(`${pp.url}/productpage`, { headers: { cookie: 'session=jason', 'x-request-id': 'req-1' } });
    assert.equal(page.status, 200);
    assert.match(page.body, /<h4>Book Details<\/h4>/);
    assert.deepEqual(stars(page.body), { filled: 9, colors: ['red', 'red'] });
    const calls = proxy.requests.map((r) => `${r.method} ${r.target} host=${String(r.headers.host)} end-user=${String(r.headers['end-user'])} x-request-id=${String(r.headers['x-request-id'])}`);
    assert.deepEqual(calls, [
      'GET http://details:9080/details/0 host=details:9080 end-user=jason x-request-id=req-1',
      'GET http://reviews:9080/reviews/0 host=reviews:9080 end-user=jason x-request-id=req-1',
      'GET http://ratings:9080/ratings/0 host=ratings:9080 end-user=jason x-request-id=req-1',
    ]);
    await pp.printed(/^GET \/productpage 200 \d+ms$/m);
    await procs.get('reviews')?.printed(/^GET \/reviews\/0 200 \d+ms$/m);
  });

  it('answers health on every service, and stops on SIGTERM with status 0', async () => {
    for (const [name, p] of procs) {
      assert.equal((await http(`${p.url}/health`)).status, 200, name);
      await p.printed(/^GET \/health 200 \d+ms$/m);
      assert.equal(p.stderr(), '', `${name} wrote nothing on stderr`);
    }
    const details = procs.get('details');
    assert.ok(details);
    assert.equal(await details.stop(), 0);
    procs.delete('details');
  });
});

describe('Bookinfo service start-up errors', { timeout: 30_000 }, () => {
  it('refuses a malformed PORT and an https HTTP_PROXY', async () => {
    await assert.rejects(startProcess('ratings', { PORT: 'eighty' }), /exited with status 2; stderr: ratings: PORT=eighty is not a port number/);
    await assert.rejects(startProcess('reviews', { HTTP_PROXY: 'https://127.0.0.1:15001' }), /exited with status 2; stderr: reviews: HTTP_PROXY=https:\/\/127\.0\.0\.1:15001: only an http:\/\/ proxy is supported/);
  });
});
