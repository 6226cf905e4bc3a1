/**
 * `trellis up examples/bookinfo` as a user runs it. Both parts are in this one file
 * because both need the gateway's port, 8080 (Istio's bookinfo-gateway), and node --test
 * runs files in parallel but the tests of a file one after another.
 *
 * Both run on a copy of examples/bookinfo (a user copies it too), without what was
 * applied to the repository's own, and the applied configuration lands in the copy.
 *
 * 1. The README's quick start: the control plane, the gateway and the six Bookinfo
 *    workloads, each with its sidecar; through the gateway the product page renders the
 *    book's details and its reviews; Ctrl-C stops everything.
 * 2. The README's traffic-management tasks: every `trellis apply` / `delete` command
 *    the README gives, in its order, with what the README says the page then shows; a
 *    reviews instance killed under load without a failed page; the applied configuration
 *    still in effect after Ctrl-C and a second `trellis up`.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_REGISTRATION_TTL_MS } from '../../src/registry/index.js';
import { Browser, copyBookinfo, fetchPage, GATEWAY_PORT, PageLoad, ROOT, servedBy, stars, trellis, UpMesh } from './up-mesh.js';

const RATINGS_ERROR = 'Ratings service is currently unavailable';
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const NO_STARS = { filled: 0, colors: [] };
const BLACK_STARS = { filled: 9, colors: ['black', 'black'] };
const RED_STARS = { filled: 9, colors: ['red', 'red'] };

describe('trellis up examples/bookinfo', { timeout: 90_000 }, () => {
  const copy = copyBookinfo();
  let mesh: UpMesh | undefined;
  after(() => {
    mesh?.kill();
    rmSync(dirname(copy), { recursive: true, force: true });
  });

  it('brings Bookinfo up behind the gateway, and stops it all on Ctrl-C', async () => {
    mesh = await UpMesh.start(copy, ['--xds-port', '0', '--admin-port', '0', '--log-level', 'warn']);
    const url = mesh.gateway;
    assert.equal(url, `http://127.0.0.1:${GATEWAY_PORT}/productpage`);
    assert.match(mesh.output, /workloads\s+6 running: productpage-v1, details-v1, reviews-v1, reviews-v2, reviews-v3, ratings-v1/);
    const versions = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const page = await fetchPage(url);
      assert.equal(page.status, 200, page.body);
      assert.match(page.body, /<title>Simple Bookstore App<\/title>/);
      assert.match(page.body, /Book Details/);
      assert.match(page.body, /Reviewer1/);
      assert.doesNotMatch(page.body, /currently unavailable/);
      versions.add(stars(page.body).colors[0] ?? 'none');
    }
    console.log(`# product page through the gateway: 12/12 rendered with details and reviews; stars seen: ${[...versions].sort().join(', ')}`);
    assert.ok(versions.size >= 2, 'without VirtualServices, reviews rotates over its versions');
    assert.equal(await mesh.interrupt(), 0, mesh.output);
    await assert.rejects(fetchPage(url), 'the gateway is gone after Ctrl-C');
  });
});

/** The `npx trellis apply|delete -f <file>` commands of the README's tasks, in order. */
function readmeTaskCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const tasks = readme.slice(readme.indexOf("### Istio's traffic-management tasks"), readme.indexOf('## Commands'));
  return [...tasks.matchAll(/^\s*npx trellis ((?:apply|delete) -f \S+)$/gm)].map((m) => m[1] as string);
}

describe("the README's traffic-management tasks, on trellis up and trellis apply", { timeout: 240_000 }, () => {
  const copy = copyBookinfo();
  let mesh: UpMesh;
  let env: Record<string, string>;
  let user: Browser;
  const readme = readmeTaskCommands();
  let next = 0;

  before(async () => {
    // The copy's workloads.yaml must still find the programs Trellis built.
    mesh = await UpMesh.start(copy, ['--xds-port', '0', '--admin-port', '0']);
    env = { TRELLIS_CONTROL_PLANE: mesh.controlPlane };
    user = new Browser(new URL(mesh.gateway).origin);
  });

  after(() => {
    mesh?.kill();
    rmSync(dirname(copy), { recursive: true, force: true });
  });

  /** Runs the README's next command, which must be `command`, as the README writes it. */
  async function readmeStep(command: string): Promise<string> {
    assert.equal(readme[next], command, `the README's task command #${next + 1}`);
    next++;
    return run(command);
  }

  /** A command of our own, outside the README's walk. */
  async function run(command: string): Promise<string> {
    const r = await trellis(command.split(' '), env);
    assert.equal(r.status, 0, `trellis ${command}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  async function pageAs(name: '' | 'jason'): Promise<{ html: string; ms: number }> {
    const browser = new Browser(user.origin);
    if (name !== '') assert.equal((await browser.signIn(name)).status, 302);
    const page = await browser.page();
    assert.equal(page.status, 200, page.body);
    return { html: page.body, ms: page.ms };
  }

  it('1. request routing: all to v1 (no stars), then jason to v2 (black stars), signed in with the form', async () => {
    assert.match(await readmeStep('apply -f samples/bookinfo/networking/destination-rule-all.yaml'), /^destinationrule\/reviews created$/m);
    assert.match(await readmeStep('apply -f samples/bookinfo/networking/virtual-service-all-v1.yaml'), /^virtualservice\/reviews created$/m);
    for (let i = 0; i < 4; i++) {
      const { html } = await pageAs(i % 2 === 0 ? '' : 'jason');
      assert.match(html, /<h4>Book Details<\/h4>/);
      assert.equal(servedBy(html), 'reviews-v1');
      assert.deepEqual(stars(html), NO_STARS);
    }
    assert.match(await readmeStep('apply -f samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml'), /^virtualservice\/reviews configured$/m);
    const signIn = await user.signIn('jason');
    assert.equal(signIn.status, 302);
    const jason = await user.page();
    assert.match(jason.body, /<span class="user">jason<\/span>/);
    assert.deepEqual(stars(jason.body), BLACK_STARS);
    assert.equal(servedBy(jason.body), 'reviews-v2');
    await user.signOut();
    const signedOut = await user.page();
    assert.doesNotMatch(signedOut.body, /class="user"/);
    assert.deepEqual(stars(signedOut.body), NO_STARS);
  });

  it('2. fault injection: a 7 s delay for jason shows the reviews error after about 6 s; an abort shows the ratings error at once', async (t) => {
    await readmeStep('apply -f samples/bookinfo/networking/virtual-service-ratings-test-delay.yaml');
    const delayed = await pageAs('jason');
    t.diagnostic(`jason's page with ratings delayed 7 s: ${Math.round(delayed.ms)} ms`);
    assert.ok(delayed.html.includes(REVIEWS_ERROR), 'the reviews error');
    assert.ok(delayed.ms >= 5_900 && delayed.ms < 10_000, `about 6 s (3 s + one retry), took ${Math.round(delayed.ms)} ms`);
    const other = await pageAs('');
    assert.ok(other.ms < 2_000 && !other.html.includes('unavailable'), `other users are not affected (${Math.round(other.ms)} ms)`);
    assert.deepEqual(stars(other.html), NO_STARS);

    await readmeStep('apply -f samples/bookinfo/networking/virtual-service-ratings-test-abort.yaml');
    const aborted = await pageAs('jason');
    t.diagnostic(`jason's page with ratings aborted: ${Math.round(aborted.ms)} ms`);
    assert.equal(aborted.html.split(RATINGS_ERROR).length - 1, 2, 'each review says the ratings are unavailable');
    assert.equal(servedBy(aborted.html), 'reviews-v2');
    assert.ok(aborted.ms < 2_000, `at once, took ${Math.round(aborted.ms)} ms`);
  });

  it('3. traffic shifting: back to v1, then 50/50 v1/v3 within tolerance, then v3 only (red stars)', async (t) => {
    await readmeStep('apply -f samples/bookinfo/networking/virtual-service-all-v1.yaml');
    assert.deepEqual(stars((await pageAs('jason')).html), NO_STARS);
    await readmeStep('apply -f samples/bookinfo/networking/virtual-service-reviews-50-v3.yaml');
    // 60 loads at 50 %: 30 expected, standard deviation 3.9; 30 ± 12 is a ±3 sd band.
    const LOADS = 60;
    const TOLERANCE = 12;
    const seen = new Map<string, number>();
    for (let i = 0; i < LOADS; i++) {
      const { html } = await pageAs('');
      const version = `${servedBy(html)} (${stars(html).colors[0] ?? 'no stars'})`;
      seen.set(version, (seen.get(version) ?? 0) + 1);
    }
    const v1 = seen.get('reviews-v1 (no stars)') ?? 0;
    const v3 = seen.get('reviews-v3 (red)') ?? 0;
    t.diagnostic(`50/50: ${[...seen].sort().map(([v, n]) => `${v} ${n}`).join(', ')} of ${LOADS} loads (accepted: ${LOADS / 2} ± ${TOLERANCE} each)`);
    assert.equal(v1 + v3, LOADS, 'only v1 and v3 answer');
    assert.ok(Math.abs(v3 - LOADS / 2) <= TOLERANCE, `v3 served ${v3} of ${LOADS}`);

    await readmeStep('apply -f samples/bookinfo/networking/virtual-service-reviews-v3.yaml');
    for (let i = 0; i < 6; i++) {
      const { html } = await pageAs(i % 2 === 0 ? '' : 'jason');
      assert.deepEqual(stars(html), RED_STARS);
    }
  });

  it('4. request timeouts: ratings delayed 2 s (black stars after about 2 s), then a 0.5 s timeout on reviews (the reviews error after about 1 s)', async (t) => {
    await readmeStep('apply -f examples/bookinfo/tasks/request-timeouts-1-delay.yaml');
    const slow = await pageAs('');
    t.diagnostic(`page with ratings delayed 2 s: ${Math.round(slow.ms)} ms`);
    assert.deepEqual(stars(slow.html), BLACK_STARS);
    assert.ok(slow.ms >= 1_950 && slow.ms < 3_000, `about 2 s, took ${Math.round(slow.ms)} ms`);
    await readmeStep('apply -f examples/bookinfo/tasks/request-timeouts-2-timeout.yaml');
    const timedOut = await pageAs('');
    t.diagnostic(`page with a 0.5 s timeout on reviews: ${Math.round(timedOut.ms)} ms`);
    assert.ok(timedOut.html.includes(REVIEWS_ERROR), 'the reviews error');
    assert.ok(timedOut.ms >= 950 && timedOut.ms < 2_500, `about 1 s (0.5 s, twice), took ${Math.round(timedOut.ms)} ms`);
  });

  it("5. circuit breaking: of 20 concurrent page loads some show the details error, details' breaker answering 503 UO", async (t) => {
    await readmeStep('apply -f examples/bookinfo/tasks/circuit-breaking.yaml');
    const pages = await Promise.all(Array.from({ length: 20 }, () => fetchPage(mesh.gateway)));
    const broken = pages.filter((p) => p.body.includes(DETAILS_ERROR)).length;
    t.diagnostic(`circuit breaking: ${broken} of 20 concurrent page loads showed the details error`);
    assert.ok(pages.every((p) => p.status === 200));
    assert.ok(broken >= 1 && broken < 20, `some, not all: ${broken} of 20`);
    const stats = await fetchPage(`${productpageAdmin()}/stats`);
    assert.match(stats.body, /istio_requests_total\{[^}]*destination_service_name="details"[^}]*response_flags="UO"[^}]*\} [1-9]/);
    // A page load on its own finds details again: the breaker's 503s are local, they do
    // not count for outlier detection (which would eject details for 3 minutes).
    assert.doesNotMatch((await fetchPage(mesh.gateway)).body, /details are currently unavailable/);
  });

  /** productpage's sidecar admin address, from its `workload registered` log line. */
  function productpageAdmin(): string {
    const m = /^productpage-v1 \| .*workload registered .*\badmin=(http:\/\/\S+)/m.exec(mesh.output);
    assert.ok(m !== null, 'productpage-v1 logged its admin address');
    return m[1] as string;
  }

  it('6. mirroring: every page from reviews v1 (no stars), and the trellis up log shows reviews-v2 serving each request too', async () => {
    assert.match(await readmeStep('delete -f examples/bookinfo/tasks/request-timeouts-1-delay.yaml'), /^virtualservice\/reviews deleted$/m);
    assert.match(await readmeStep('apply -f examples/bookinfo/tasks/mirroring.yaml'), /^virtualservice\/reviews created$/m);
    assert.equal(next, readme.length, `every task command of the README was run (${readme.length})`);
    const served = /GET \/reviews\/0 200/;
    const v1 = mesh.count('reviews-v1', served);
    const v2 = mesh.count('reviews-v2', served);
    for (let i = 0; i < 5; i++) {
      const { html } = await pageAs('');
      assert.equal(servedBy(html), 'reviews-v1');
      assert.deepEqual(stars(html), NO_STARS);
    }
    assert.equal(mesh.count('reviews-v1', served), v1 + 5);
    await mesh.waitFor(() => mesh.count('reviews-v2', served) >= v2 + 5, 5_000, 'reviews-v2 to serve the 5 mirrored requests');
  });

  it('a reviews instance killed under load: no failed page, and it leaves the registry within the TTL', async (t) => {
    // Reviews over all three instances, and details without the circuit breaker again.
    await run('apply -f samples/bookinfo/networking/destination-rule-all.yaml');
    await run('delete -f examples/bookinfo/tasks/mirroring.yaml');
    const pid = mesh.appPid('reviews-v2');
    const registered = async (): Promise<boolean> => {
      const reg = JSON.parse((await fetchPage(`${mesh.controlPlane}/debug/registryz`)).body) as { workloads: { name: string }[] };
      return reg.workloads.some((w) => w.name === 'reviews-v2');
    };
    assert.ok(await registered());
    const load = new PageLoad(mesh.gateway, 4);
    try {
      await load.until(30, 30_000);
      assert.equal(load.servedBy.size, 3, `all three versions serve before: ${load.describe()}`);
      const killedAt = performance.now();
      process.kill(pid, 'SIGKILL');
      const deadline = killedAt + DEFAULT_REGISTRATION_TTL_MS;
      while ((await registered()) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const goneMs = performance.now() - killedAt;
      t.diagnostic(`reviews-v2's application SIGKILLed: gone from /debug/registryz after ${Math.round(goneMs)} ms (TTL ${DEFAULT_REGISTRATION_TTL_MS} ms)`);
      assert.ok(!(await registered()), `reviews-v2 still registered ${DEFAULT_REGISTRATION_TTL_MS} ms after its application was killed`);
      await mesh.waitFor(/workload exited workload=reviews-v2 /, 10_000, 'trellis up to see reviews-v2 exit');
      const after = load.total;
      await load.until(after + 40, 30_000);
    } finally {
      await load.stop();
    }
    t.diagnostic(`under load (4 clients): ${load.describe()}`);
    assert.deepEqual(load.failures, [], 'no failed product page');
  });

  it('Ctrl-C and trellis up again: the applied configuration is still in effect, and trellis get lists it', async () => {
    await run('apply -f samples/bookinfo/networking/virtual-service-reviews-v3.yaml');
    assert.equal(await mesh.interrupt(), 0, mesh.output);
    mesh = await UpMesh.start(copy, ['--xds-port', '0', '--admin-port', '0']);
    env = { TRELLIS_CONTROL_PLANE: mesh.controlPlane };
    for (let i = 0; i < 4; i++) {
      const { html } = await pageAs(i % 2 === 0 ? '' : 'jason');
      assert.equal(servedBy(html), 'reviews-v3');
      assert.deepEqual(stars(html), RED_STARS);
    }
    const listed = await run('get virtualservices');
    assert.match(listed, /^NAME\s+GATEWAYS\s+HOSTS\s+SOURCE$/m);
    assert.match(listed, /^reviews\s+<none>\s+reviews\s+applied$/m);
    assert.match(listed, /^bookinfo\s+bookinfo-gateway\s+\*\s+bookinfo-gateway\.yaml:\d+$/m);
    assert.equal(await mesh.interrupt(), 0, mesh.output);
    await assert.rejects(fetchPage(`http://127.0.0.1:${GATEWAY_PORT}/productpage`), 'the gateway is gone after Ctrl-C');
  });
});
