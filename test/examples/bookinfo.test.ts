/**
 * The Bookinfo example (examples/bookinfo): the four services in this process on
 * 127.0.0.1:0, wired to each other directly by URL, plus stub backends that fail, stall
 * or record what reaches them. The checks are what Istio's Bookinfo tasks observe: stars
 * per reviews version, the error strings, the 3 s + 1 retry of productpage, the headers
 * that reach ratings.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { createDetailsServer } from '../../examples/bookinfo/src/details/server.js';
import { createProductpageServer, type ProductpageOptions } from '../../examples/bookinfo/src/productpage/server.js';
import { createRatingsServer } from '../../examples/bookinfo/src/ratings/server.js';
import { ratingsTimeoutMs, reviewsConfigFromEnv } from '../../examples/bookinfo/src/reviews/config.js';
import { createReviewsServer } from '../../examples/bookinfo/src/reviews/server.js';
import { http, serve, startStub, stars, type Serving } from './bookinfo-fixture.js';

const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const RATINGS_ERROR = 'Ratings service is currently unavailable';
const REVIEW1 = 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!';

const BOOK_DETAILS = {
  id: 0,
  author: 'William Shakespeare',
  year: 1595,
  type: 'paperback',
  pages: 200,
  publisher: 'PublisherA',
  language: 'English',
  'ISBN-10': '1234567890',
  'ISBN-13': '123-1234567890',
};

const quiet = (): void => {};

type Version = 'v1' | 'v2' | 'v3';

describe('Bookinfo example', () => {
  let details: Serving;
  let ratings: Serving;
  const reviews = {} as Record<Version, Serving>;
  const stopping: Array<() => Promise<void>> = [];

  before(async () => {
    details = await serve(createDetailsServer({ log: quiet }));
    stopping.push(() => details.close());
    ratings = await serve(createRatingsServer({ log: quiet }));
    stopping.push(() => ratings.close());
    for (const v of ['v1', 'v2', 'v3'] as const) {
      reviews[v] = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: v }), ratingsUrl: ratings.url, podname: `reviews-${v}`, log: quiet }));
      stopping.push(() => reviews[v].close());
    }
  });
  after(async () => {
    await Promise.all(stopping.map((stop) => stop()));
  });

  /** A productpage in front of `reviewsUrl` (and the real details unless told otherwise), stopped after the test. */
  async function productpage(t: { after(fn: () => Promise<void>): void }, options: Partial<ProductpageOptions> & { reviewsUrl: string }): Promise<Serving> {
    const pp = await serve(createProductpageServer({ detailsUrl: details.url, ratingsUrl: ratings.url, log: quiet, ...options }));
    t.after(() => pp.close());
    return pp;
  }

  describe('productpage', () => {
    it('renders the book, its details and the reviews; reviews v1 shows no stars', async (t) => {
      const pp = await productpage(t, { reviewsUrl: reviews.v1.url });
      const page = await http(`${pp.url}/productpage`);
      assert.equal(page.status, 200);
      assert.match(page.headers['content-type'] ?? '', /^text\/html/);
      assert.match(page.body, /<title>Simple Bookstore App<\/title>/);
      assert.match(page.body, /<h1>The Comedy of Errors<\/h1>/);
      assert.match(page.body, /<h4>Book Details<\/h4>/);
      assert.match(page.body, /<td>1234567890<\/td><td>PublisherA<\/td><td>200<\/td><td>paperback<\/td><td>English<\/td>/);
      assert.match(page.body, /<h4>Book Reviews<\/h4>/);
      assert.ok(page.body.includes(`"${REVIEW1}"`), 'the first review is shown');
      assert.match(page.body, /Reviewer2/);
      assert.match(page.body, /Reviews served by: reviews-v1/);
      assert.deepEqual(stars(page.body), { filled: 0, colors: [] });
      assert.doesNotMatch(page.body, /Error fetching/);
    });

    it('shows black stars with reviews v2 and red stars with reviews v3 (5 and 4 of 5)', async (t) => {
      for (const [v, color] of [['v2', 'black'], ['v3', 'red']] as const) {
        const pp = await productpage(t, { reviewsUrl: reviews[v].url });
        const page = await http(`${pp.url}/productpage`);
        assert.equal(page.status, 200);
        assert.deepEqual(stars(page.body), { filled: 9, colors: [color, color] }, v);
        assert.equal(page.body.match(/<span class="star-empty">/g)?.length, 1, `${v}: one empty star (Reviewer2 has 4)`);
      }
    });

    it('shows the details error when details fails, and the reviews still', async (t) => {
      // Istio's fault-injection-details-v1.yaml aborts every details call with 555.
      const failing = await startStub(() => ({ status: 555, json: { error: 'fault filter abort' } }));
      t.after(() => failing.close());
      const pp = await productpage(t, { reviewsUrl: reviews.v3.url, detailsUrl: failing.url });
      const page = await http(`${pp.url}/productpage`);
      assert.equal(page.status, 200);
      assert.match(page.body, /Error fetching product details/);
      assert.ok(page.body.includes(DETAILS_ERROR));
      assert.doesNotMatch(page.body, /Book Details/);
      assert.deepEqual(stars(page.body).colors, ['red', 'red']);
      const api = await http(`${pp.url}/api/v1/products/0`);
      assert.equal(api.status, 555, 'the API passes the backend status on');
      assert.deepEqual(JSON.parse(api.body), { error: DETAILS_ERROR });
      assert.equal(failing.requests.length, 2, 'details is not retried');
    });

    it('shows the details error when nothing listens at details (API status 500)', async (t) => {
      const gone = await serve(createDetailsServer({ log: quiet }));
      await gone.close();
      const pp = await productpage(t, { reviewsUrl: reviews.v1.url, detailsUrl: gone.url });
      const page = await http(`${pp.url}/productpage`);
      assert.ok(page.body.includes(DETAILS_ERROR));
      const api = await http(`${pp.url}/api/v1/products/0`);
      assert.equal(api.status, 500);
      assert.deepEqual(JSON.parse(api.body), { error: DETAILS_ERROR });
    });

    it('gives up on a stalled reviews after two tries of 3 s: the reviews error after ~6 s', { timeout: 30_000 }, async (t) => {
      const stalled = await startStub(() => 'stall');
      t.after(() => stalled.close());
      // The default timeout (no `timeoutMs`): this is the behaviour Istio's fault-injection task shows.
      const pp = await productpage(t, { reviewsUrl: stalled.url });
      const start = performance.now();
      const page = await http(`${pp.url}/productpage`);
      const elapsed = performance.now() - start;
      assert.equal(page.status, 200);
      assert.match(page.body, /Error fetching product reviews/);
      assert.ok(page.body.includes(REVIEWS_ERROR));
      assert.match(page.body, /<h4>Book Details<\/h4>/, 'details still render');
      assert.equal(stalled.requests.length, 2, 'reviews is tried twice');
      assert.ok(elapsed >= 5_950 && elapsed < 10_000, `page took ${Math.round(elapsed)} ms; expected about 6,000`);
      t.diagnostic(`productpage with a stalled reviews answered after ${Math.round(elapsed)} ms`);
    });

    it('tries reviews a second time after an error status, and succeeds', async (t) => {
      let calls = 0;
      const flaky = await startStub(() => (++calls === 1 ? { status: 503 } : { status: 200, json: { id: '0', podname: 'stub', clustername: 'null', reviews: [] } }));
      t.after(() => flaky.close());
      const pp = await productpage(t, { reviewsUrl: flaky.url });
      const api = await http(`${pp.url}/api/v1/products/0/reviews`);
      assert.equal(api.status, 200);
      assert.deepEqual(JSON.parse(api.body), { id: '0', podname: 'stub', clustername: 'null', reviews: [] });
      assert.equal(flaky.requests.length, 2);
    });

    it('signs in and out with a session cookie, showing the user', async (t) => {
      const pp = await productpage(t, { reviewsUrl: reviews.v1.url });
      const login = await http(`${pp.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', referer: `${pp.url}/productpage` },
        body: 'username=jason&passwd=secret',
      });
      assert.equal(login.status, 302);
      assert.equal(login.headers.location, `${pp.url}/productpage`);
      const cookie = (login.headers['set-cookie'] ?? [])[0] ?? '';
      assert.match(cookie, /^session=jason;/);
      const page = await http(`${pp.url}/productpage`, { headers: { cookie: cookie.split(';')[0] as string } });
      assert.match(page.body, /<span class="user">jason<\/span> <a href="logout">Sign out<\/a>/);
      const anonymous = await http(`${pp.url}/productpage`);
      assert.match(anonymous.body, /<form method="post" action="login" name="login_form">/);
      assert.match(anonymous.body, /name="username"/);
      const logout = await http(`${pp.url}/logout`, { headers: { cookie: 'session=jason', referer: `${pp.url}/productpage` } });
      assert.equal(logout.status, 302);
      assert.match((logout.headers['set-cookie'] ?? [])[0] ?? '', /^session=;.*Max-Age=0/);
      const noReferer = await http(`${pp.url}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=tester' });
      assert.equal(noReferer.headers.location, '/productpage');
      const empty = await http(`${pp.url}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=' });
      assert.equal(empty.status, 400);
    });

    it('sends the signed-in user as end-user, and the trace headers, through reviews to ratings', async (t) => {
      const recording = await startStub(() => ({ status: 200, json: { id: 0, ratings: { Reviewer1: 1, Reviewer2: 2 } } }));
      t.after(() => recording.close());
      const rv = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: 'v2' }), ratingsUrl: recording.url, log: quiet }));
      t.after(() => rv.close());
      const pp = await productpage(t, { reviewsUrl: rv.url });
      const trace = {
        'x-request-id': 'f9a1c3e2-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=value',
        'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-sampled': '1',
        b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
        'x-ot-span-context': 'lightstep',
        'x-datadog-trace-id': '1234',
        'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000/1;o=1',
        sw8: '1-abc',
      };
      const page = await http(`${pp.url}/productpage`, { headers: { ...trace, cookie: 'session=jason', 'x-not-propagated': 'no' } });
      assert.deepEqual(stars(page.body), { filled: 3, colors: ['black', 'black'] }, 'the stub ratings are shown');
      assert.equal(recording.requests.length, 1);
      const seen = recording.requests[0]?.headers ?? {};
      assert.equal(seen['end-user'], 'jason');
      for (const [name, value] of Object.entries(trace)) assert.equal(seen[name], value, name);
      assert.equal(seen['x-not-propagated'], undefined);
      assert.equal(recording.requests[0]?.target, '/ratings/0');

      await http(`${pp.url}/productpage`, { headers: { 'x-request-id': 'anonymous-1' } });
      assert.equal(recording.requests.length, 2);
      assert.equal(recording.requests[1]?.headers['end-user'], undefined, 'no end-user when signed out');
      assert.equal(recording.requests[1]?.headers['x-request-id'], 'anonymous-1');
    });

    it("answers the JSON API in Istio's shapes", async (t) => {
      const pp = await productpage(t, { reviewsUrl: reviews.v2.url });
      const products = await http(`${pp.url}/api/v1/products`);
      assert.equal(products.status, 200);
      assert.match(products.headers['content-type'] ?? '', /^application\/json/);
      const list = JSON.parse(products.body) as Array<Record<string, unknown>>;
      assert.deepEqual(list.map((p) => [p.id, p.title]), [[0, 'The Comedy of Errors']]);
      assert.match(String(list[0]?.descriptionHtml), /^<a href="https:\/\/en.wikipedia.org\/wiki\/The_Comedy_of_Errors">Wikipedia Summary<\/a>/);

      const one = await http(`${pp.url}/api/v1/products/0`);
      assert.equal(one.status, 200);
      assert.deepEqual(JSON.parse(one.body), BOOK_DETAILS);
      assert.deepEqual(Object.keys(JSON.parse(one.body) as object), Object.keys(BOOK_DETAILS), 'key order as the original');

      const rv = await http(`${pp.url}/api/v1/products/0/reviews`);
      assert.equal(rv.status, 200);
      assert.deepEqual(JSON.parse(rv.body), {
        id: '0',
        podname: 'reviews-v2',
        clustername: 'null',
        reviews: [
          { reviewer: 'Reviewer1', text: REVIEW1, rating: { stars: 5, color: 'black' } },
          { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.', rating: { stars: 4, color: 'black' } },
        ],
      });

      const rt = await http(`${pp.url}/api/v1/products/0/ratings`);
      assert.equal(rt.status, 200);
      assert.deepEqual(JSON.parse(rt.body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });

      const bad = await http(`${pp.url}/api/v1/products/abc`);
      assert.equal(bad.status, 400, "details' status for a non-numeric id");
      assert.deepEqual(JSON.parse(bad.body), { error: DETAILS_ERROR });
    });

    it('serves the index, health, the style sheet, and 404/405 for the rest', async (t) => {
      const pp = await productpage(t, { reviewsUrl: reviews.v1.url });
      const index = await http(`${pp.url}/`);
      assert.equal(index.status, 200);
      assert.match(index.body, /<title>Simple Bookstore App<\/title>/);
      assert.match(index.body, /<a href="productpage\?u=normal">Normal user<\/a>/);
      assert.ok(index.body.includes(`<td>${reviews.v1.url}</td>`), 'the service table shows where reviews is called');
      assert.equal((await http(`${pp.url}/index.html`)).status, 200);
      const health = await http(`${pp.url}/health`);
      assert.deepEqual([health.status, health.body], [200, 'Product page is healthy']);
      const css = await http(`${pp.url}/static/bookinfo.css`);
      assert.equal(css.status, 200);
      assert.match(css.headers['content-type'] ?? '', /^text\/css/);
      assert.equal((await http(`${pp.url}/static/missing.css`)).status, 404);
      assert.equal((await http(`${pp.url}/nothing`)).status, 404);
      const post = await http(`${pp.url}/productpage`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      assert.equal((await http(`${pp.url}/login`)).status, 405);
    });
  });

  describe('reviews', () => {
    it('v1 never calls ratings; v2 and v3 report the ratings error when ratings fails', async (t) => {
      // Istio's virtual-service-ratings-test-abort.yaml: ratings answers 500.
      const failing = await startStub(() => ({ status: 500, json: { error: 'fault filter abort' } }));
      t.after(() => failing.close());
      for (const v of ['v1', 'v2', 'v3'] as const) {
        const rv = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: v }), ratingsUrl: failing.url, log: quiet }));
        t.after(() => rv.close());
        const reply = await http(`${rv.url}/reviews/0`);
        assert.equal(reply.status, 200, v);
        const body = JSON.parse(reply.body) as { reviews: Array<{ rating?: unknown }> };
        assert.deepEqual(body.reviews.map((r) => r.rating), v === 'v1' ? [undefined, undefined] : [{ error: RATINGS_ERROR }, { error: RATINGS_ERROR }], v);
      }
      assert.equal(failing.requests.length, 2, 'only v2 and v3 called ratings');

      const v3 = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: 'v3' }), ratingsUrl: failing.url, log: quiet }));
      t.after(() => v3.close());
      const pp = await productpage(t, { reviewsUrl: v3.url });
      const page = await http(`${pp.url}/productpage`);
      assert.equal(page.body.match(new RegExp(`<p class="rating-error">${RATINGS_ERROR}</p>`, 'g'))?.length, 2);
      assert.equal(stars(page.body).filled, 0);
    });

    it('v3 gives up on a stalled ratings after 2.5 s', { timeout: 30_000 }, async (t) => {
      const stalled = await startStub(() => 'stall');
      t.after(() => stalled.close());
      const rv = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: 'v3' }), ratingsUrl: stalled.url, log: quiet }));
      t.after(() => rv.close());
      const start = performance.now();
      const reply = await http(`${rv.url}/reviews/0`);
      const elapsed = performance.now() - start;
      assert.deepEqual((JSON.parse(reply.body) as { reviews: Array<{ rating: unknown }> }).reviews.map((r) => r.rating), [{ error: RATINGS_ERROR }, { error: RATINGS_ERROR }]);
      assert.ok(elapsed >= 2_450 && elapsed < 6_000, `reviews v3 took ${Math.round(elapsed)} ms; expected about 2,500`);
    });

    it('takes its version, ratings switch and star color from the environment', () => {
      assert.deepEqual(reviewsConfigFromEnv({}), { version: 'v1', ratingsEnabled: false, starColor: 'black', ratingsTimeoutMs: 10_000 });
      assert.deepEqual(reviewsConfigFromEnv({ VERSION: 'v2' }), { version: 'v2', ratingsEnabled: true, starColor: 'black', ratingsTimeoutMs: 10_000 });
      assert.deepEqual(reviewsConfigFromEnv({ SERVICE_VERSION: 'v3' }), { version: 'v3', ratingsEnabled: true, starColor: 'red', ratingsTimeoutMs: 2_500 });
      assert.deepEqual(reviewsConfigFromEnv({ VERSION: 'v1', ENABLE_RATINGS: 'TRUE', STAR_COLOR: 'blue' }), { version: 'v1', ratingsEnabled: true, starColor: 'blue', ratingsTimeoutMs: 2_500 });
      assert.equal(reviewsConfigFromEnv({ VERSION: 'v3', ENABLE_RATINGS: 'false' }).ratingsEnabled, false);
      assert.equal(ratingsTimeoutMs('black'), 10_000);
    });

    it('answers 404 for a non-numeric id and its health check', async () => {
      assert.equal((await http(`${reviews.v1.url}/reviews/abc`)).status, 404);
      const health = await http(`${reviews.v1.url}/health`);
      assert.deepEqual(JSON.parse(health.body), { status: 'Reviews is healthy' });
    });
  });

  describe('details and ratings', () => {
    it("details answers the original's JSON, 400 for a non-numeric id, and health", async () => {
      const ok = await http(`${details.url}/details/7`);
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body), { ...BOOK_DETAILS, id: 7 });
      const bad = await http(`${details.url}/details/seven`);
      assert.deepEqual([bad.status, JSON.parse(bad.body)], [400, { error: 'please provide numeric product id' }]);
      assert.deepEqual(JSON.parse((await http(`${details.url}/health`)).body), { status: 'Details is healthy' });
    });

    it('ratings answers the fixed ratings, stores posted ones, and rejects bad input', async () => {
      assert.deepEqual(JSON.parse((await http(`${ratings.url}/ratings/0`)).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
      const posted = await http(`${ratings.url}/ratings/42`, { method: 'POST', body: '{"Reviewer1":1,"Reviewer2":2}' });
      assert.deepEqual([posted.status, JSON.parse(posted.body)], [200, { id: 42, ratings: { Reviewer1: 1, Reviewer2: 2 } }]);
      assert.deepEqual(JSON.parse((await http(`${ratings.url}/ratings/42`)).body), { id: 42, ratings: { Reviewer1: 1, Reviewer2: 2 } });
      const badId = await http(`${ratings.url}/ratings/x`);
      assert.deepEqual([badId.status, JSON.parse(badId.body)], [400, { error: 'please provide numeric product ID' }]);
      const badJson = await http(`${ratings.url}/ratings/1`, { method: 'POST', body: '{' });
      assert.deepEqual([badJson.status, JSON.parse(badJson.body)], [400, { error: 'please provide valid ratings JSON' }]);
      assert.deepEqual(JSON.parse((await http(`${ratings.url}/health`)).body), { status: 'Ratings is healthy' });
    });

    it('logs one line per request: method, path, status, duration', async (t) => {
      const lines: string[] = [];
      const logged = new EventEmitter();
      const d = await serve(createDetailsServer({ log: (line) => logged.emit('line', lines.push(line)) }));
      t.after(() => d.close());
      // The line is written when the response is closed, which can be just after the client saw it.
      const two = linesLogged(logged, lines, 2);
      await http(`${d.url}/details/0?x=1`);
      await http(`${d.url}/details/nope`);
      await two;
      assert.match(lines[0] ?? '', /^GET \/details\/0\?x=1 200 \d+ms$/);
      assert.match(lines[1] ?? '', /^GET \/details\/nope 400 \d+ms$/);
    });
  });
});

/** Resolves once `lines` has `n` entries (`logged` emits 'line' on each); rejects after 5 s. */
async function linesLogged(logged: EventEmitter, lines: readonly string[], n: number): Promise<void> {
  const signal = AbortSignal.timeout(5_000);
  while (lines.length < n) await once(logged, 'line', { signal });
}
