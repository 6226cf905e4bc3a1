/**
 * Istio's Bookinfo tasks through a real Trellis sidecar: the control plane reads Istio's
 * own samples (samples/bookinfo/networking, unchanged), and the Bookinfo services reach
 * each other only through the sidecar as their HTTP proxy, by the default
 * `http://<service>:9080` URLs. The expected pages are the ones istio.io describes for
 * request routing, fault injection and traffic shifting.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { createDetailsServer } from '../../examples/bookinfo/src/details/server.js';
import { createProductpageServer } from '../../examples/bookinfo/src/productpage/server.js';
import { createRatingsServer } from '../../examples/bookinfo/src/ratings/server.js';
import { reviewsConfigFromEnv } from '../../examples/bookinfo/src/reviews/config.js';
import { createReviewsServer } from '../../examples/bookinfo/src/reviews/server.js';
import { MeshClient } from '../../examples/bookinfo/src/shared/mesh-client.js';
import { serviceUrl } from '../../examples/bookinfo/src/shared/service-url.js';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { ROOT } from '../helpers.js';
import { http, serve, stars, type Serving } from './bookinfo-fixture.js';

const log = new Logger({ level: 'warn' });
const quiet = (): void => {};
const SAMPLES = join(ROOT, 'samples/bookinfo/networking');
const SERVICES = ['productpage', 'details', 'reviews', 'ratings'] as const;
const RATINGS_ERROR = 'Ratings service is currently unavailable';
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';

/** One resource of an Istio sample file (they hold several, separated by `---`). */
function sample(file: string, name: string): string {
  const docs = readFileSync(join(SAMPLES, file), 'utf8').split(/^---$/m);
  const doc = docs.find((d) => new RegExp(`^metadata:\\s*\\n\\s+name: ${name}$`, 'm').test(d));
  if (doc === undefined) throw new Error(`${file} has no resource named ${name}`);
  return doc;
}

function services(): string {
  return SERVICES.map((s) => `apiVersion: v1
kind: Service
metadata: {name: ${s}, labels: {app: ${s}, service: ${s}}}
spec: {selector: {app: ${s}}, ports: [{name: http, port: 9080}]}
`).join('---\n');
}

function workloadEntries(ports: Readonly<Record<string, number>>): string {
  return Object.entries(ports).map(([name, port]) => {
    const [app, version] = name.split('-') as [string, string];
    return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: ${app}, version: ${version}}, serviceAccount: bookinfo-${app}}
`;
  }).join('---\n');
}

describe("Istio's Bookinfo tasks through a Trellis sidecar", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bookinfo-'));
  const apps: Serving[] = [];
  let cp: ControlPlane;
  let sidecar: Proxy;
  let productpage: Serving;

  /** Applies one VirtualService of a sample (replacing any earlier one of that name) and waits until the sidecar has the new routes. */
  async function apply(file: string, name: string): Promise<void> {
    const before = sidecar.config.current.routes.get('9080');
    writeFileSync(join(dir, `vs-${name}.yaml`), sample(file, name));
    cp.rescan();
    await sidecar.waitFor((s) => s.routes.get('9080') !== before);
  }

  /** The product page as `user` (anonymous when ''): its stars, and whether it shows an error. */
  async function page(user = ''): Promise<{ readonly html: string; readonly ms: number }> {
    const start = performance.now();
    const reply = await http(`${productpage.url}/productpage`, { headers: user === '' ? {} : { cookie: `session=${user}` } });
    assert.equal(reply.status, 200);
    return { html: reply.body, ms: performance.now() - start };
  }

  before(async () => {
    const details = await serve(createDetailsServer({ log: quiet }));
    const ratings = await serve(createRatingsServer({ log: quiet }));
    apps.push(details, ratings);
    writeFileSync(join(dir, 'bookinfo.yaml'), `${services()}---\n${workloadEntries({ 'details-v1': details.port, 'ratings-v1': ratings.port })}`);
    writeFileSync(join(dir, 'destination-rule-all.yaml'), readFileSync(join(SAMPLES, 'destination-rule-all.yaml'), 'utf8'));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    // One sidecar serves every application here: routing is decided on the client side,
    // so this is what each workload's own sidecar would do.
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'bookinfo', namespace: 'default', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => s.routes.has('9080'));
    const client = MeshClient.fromEnv({ HTTP_PROXY: `http://127.0.0.1:${sidecar.listenerPort('virtualOutbound') as number}` });
    const ports: Record<string, number> = { 'details-v1': details.port, 'ratings-v1': ratings.port };
    for (const v of ['v1', 'v2', 'v3']) {
      const reviews = await serve(createReviewsServer({ config: reviewsConfigFromEnv({ VERSION: v }), ratingsUrl: serviceUrl({}, 'ratings'), client, podname: `reviews-${v}`, log: quiet }));
      apps.push(reviews);
      ports[`reviews-${v}`] = reviews.port;
    }
    productpage = await serve(createProductpageServer({ detailsUrl: serviceUrl({}, 'details'), reviewsUrl: serviceUrl({}, 'reviews'), ratingsUrl: serviceUrl({}, 'ratings'), client, log: quiet }));
    apps.push(productpage);
    ports['productpage-v1'] = productpage.port;
    writeFileSync(join(dir, 'bookinfo.yaml'), `${services()}---\n${workloadEntries(ports)}`);
    cp.rescan();
    const cluster = (s: Parameters<Parameters<Proxy['waitFor']>[0]>[0], host: string, subset = ''): number => s.clusters.get(`outbound|9080|${subset}|${host}.default.svc.cluster.local`)?.endpoints.length ?? 0;
    await sidecar.waitFor((s) => cluster(s, 'reviews') === 3 && ['v1', 'v2', 'v3'].every((v) => cluster(s, 'reviews', v) === 1) && cluster(s, 'ratings', 'v1') === 1 && cluster(s, 'details', 'v1') === 1);
  });

  after(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await sidecar?.close();
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('request routing: everyone gets reviews v1 (no stars) with virtual-service-all-v1', async () => {
    await apply('virtual-service-all-v1.yaml', 'reviews');
    for (let i = 0; i < 3; i++) {
      const { html } = await page(i === 0 ? 'jason' : '');
      assert.match(html, /<h4>Book Details<\/h4>/);
      assert.match(html, /Reviews served by: reviews-v1/);
      assert.deepEqual(stars(html), { filled: 0, colors: [] });
    }
  });

  it('request routing: jason gets black stars (v2), others none, with virtual-service-reviews-test-v2', async () => {
    await apply('virtual-service-reviews-test-v2.yaml', 'reviews');
    assert.deepEqual(stars((await page('jason')).html), { filled: 9, colors: ['black', 'black'] });
    assert.deepEqual(stars((await page('')).html), { filled: 0, colors: [] });
    assert.deepEqual(stars((await page('tester')).html), { filled: 0, colors: [] });
  });

  it("fault injection: an HTTP abort on ratings for jason shows the ratings error, at once", async () => {
    await apply('virtual-service-ratings-test-abort.yaml', 'ratings');
    const jason = await page('jason');
    assert.equal(jason.html.match(new RegExp(RATINGS_ERROR, 'g'))?.length, 2);
    assert.deepEqual(stars(jason.html).filled, 0);
    assert.ok(jason.ms < 2_000, `the page took ${Math.round(jason.ms)} ms`);
    const anonymous = await page('');
    assert.doesNotMatch(anonymous.html, new RegExp(RATINGS_ERROR));
  });

  it('fault injection: a 7 s delay on ratings for jason shows the reviews error after ~6 s (3 s + 1 retry)', async (t) => {
    await apply('virtual-service-ratings-test-delay.yaml', 'ratings');
    const jason = await page('jason');
    t.diagnostic(`jason's page with ratings delayed 7 s answered after ${Math.round(jason.ms)} ms`);
    assert.match(jason.html, /Error fetching product reviews/);
    assert.ok(jason.html.includes(REVIEWS_ERROR));
    assert.ok(jason.ms >= 5_950 && jason.ms < 10_000, `the page took ${Math.round(jason.ms)} ms`);
    const anonymous = await page('');
    assert.match(anonymous.html, /Reviews served by: reviews-v1/);
    assert.ok(anonymous.ms < 2_000, `the anonymous page took ${Math.round(anonymous.ms)} ms`);
  });

  /** Which reviews version served each of `n` anonymous page loads, by the star color (v1 has none). */
  async function versions(n: number): Promise<Record<string, number>> {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const { html } = await page('');
      const v = /Reviews served by: reviews-(v\d)/.exec(html)?.[1] ?? 'error';
      seen[v] = (seen[v] ?? 0) + 1;
    }
    return seen;
  }

  /** `count` of `n` is within 4 standard deviations of a binomial share `p` (a false alarm about once in 16,000 runs). */
  function assertShare(count: number, n: number, p: number, what: string): void {
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count - n * p) <= 4 * sd, `${what}: ${count} of ${n}, expected ${n * p} ± ${Math.round(4 * sd)}`);
  }

  it('traffic shifting: 80/20 and 90/10 between v1 and v2/v3, and v2/v3 half and half', async (t) => {
    const N = 300;
    await apply('virtual-service-reviews-80-20.yaml', 'reviews');
    const eighty = await versions(N);
    t.diagnostic(`virtual-service-reviews-80-20 over ${N} pages: ${JSON.stringify(eighty)}`);
    assert.deepEqual(Object.keys(eighty).sort(), ['v1', 'v2']);
    assertShare(eighty.v2 ?? 0, N, 0.2, 'v2 share of 80/20');
    await apply('virtual-service-reviews-90-10.yaml', 'reviews');
    const ninety = await versions(N);
    t.diagnostic(`virtual-service-reviews-90-10 over ${N} pages: ${JSON.stringify(ninety)}`);
    assert.deepEqual(Object.keys(ninety).sort(), ['v1', 'v2']);
    assertShare(ninety.v2 ?? 0, N, 0.1, 'v2 share of 90/10');
    await apply('virtual-service-reviews-v2-v3.yaml', 'reviews');
    const half = await versions(N);
    t.diagnostic(`virtual-service-reviews-v2-v3 over ${N} pages: ${JSON.stringify(half)}`);
    assert.deepEqual(Object.keys(half).sort(), ['v2', 'v3']);
    assertShare(half.v3 ?? 0, N, 0.5, 'v3 share of v2/v3');
  });

  it('request routing: jason to v2 (black stars), everyone else to v3 (red) with virtual-service-reviews-jason-v2-v3', async () => {
    await apply('virtual-service-all-v1.yaml', 'ratings'); // the delay task's rule off again
    await apply('virtual-service-reviews-jason-v2-v3.yaml', 'reviews');
    assert.deepEqual(stars((await page('jason')).html).colors, ['black', 'black']);
    assert.match((await page('jason')).html, /Reviews served by: reviews-v2/);
    for (let i = 0; i < 3; i++) assert.match((await page('')).html, /Reviews served by: reviews-v3/);
  });

  it('fault injection: details aborted with 555 for everyone shows the details error, and the reviews still', async () => {
    await apply('fault-injection-details-v1.yaml', 'details');
    const { html, ms } = await page('');
    assert.match(html, /Error fetching product details/);
    assert.ok(html.includes('Sorry, product details are currently unavailable for this book.'));
    assert.match(html, /Reviews served by: reviews-v3/);
    assert.ok(ms < 2_000, `the page took ${Math.round(ms)} ms`);
    await apply('virtual-service-all-v1.yaml', 'details');
    assert.match((await page('')).html, /<h4>Book Details<\/h4>/);
  });

  it('traffic shifting: always red stars (v3) with virtual-service-reviews-v3', async () => {
    await apply('virtual-service-reviews-v3.yaml', 'reviews');
    for (const user of ['', 'jason']) {
      const { html } = await page(user);
      assert.match(html, /Reviews served by: reviews-v3/, user);
    }
    assert.deepEqual(stars((await page('')).html), { filled: 9, colors: ['red', 'red'] });
  });
});
