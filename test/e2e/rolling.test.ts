/**
 * Rolling replacement end to end: a service of three instances registered at run time
 * (`POST /v1/registrations`), under steady load through a sidecar, is replaced one
 * instance at a time — start a new instance, register it, wait until the sidecar has it,
 * deregister an old one (`DELETE`), wait until the sidecar has dropped it, let its
 * requests in flight finish, stop it — without a single failed request, GETs and POSTs
 * alike. GETs survive even an instance that stops as soon as it has nothing in flight
 * itself. And an endpoint removed from EDS while a request to it is in flight: the
 * request completes normally, and new requests go to the other instances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Instance } from './instances.js';
import { LoadLoop } from './load-loop.js';
import { Mesh, type Registration, serviceYaml } from './mesh.js';

const CONCURRENCY = 8;
/** Replies (per client group) between two steps of the rollout, so every step happens under load. */
const BETWEEN_STEPS = 100;

describe('rolling replacement through the sidecar', { timeout: 120_000 }, () => {
  let mesh: Mesh;
  const instances: Instance[] = [];
  const loads: LoadLoop[] = [];

  before(async () => {
    mesh = await Mesh.start({ yaml: [serviceYaml('web'), serviceYaml('api'), serviceYaml('slow')].join('---\n') });
  });

  after(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    await mesh?.close();
    await Promise.all(instances.map((i) => i.kill()));
  });

  type Live = { instance: Instance; reg: Registration }[];

  async function startInstance(service: string, name: string): Promise<Live[number]> {
    const instance = await Instance.start(name);
    instances.push(instance);
    const reg = await mesh.register(service, name, instance.port);
    return { instance, reg };
  }

  const has = (service: string, reg: Registration): Promise<void> => mesh.waitForEndpoints(service, (e) => e.some((x) => x.id === reg.endpoint));
  const hasNot = (service: string, reg: Registration): Promise<void> => mesh.waitForEndpoints(service, (e) => e.every((x) => x.id !== reg.endpoint));

  /** Three instances of `service`, registered, and known to the sidecar. */
  async function firstVersion(service: string): Promise<Live> {
    const live: Live = [];
    for (const v of ['a', 'b', 'c']) live.push(await startInstance(service, `${service}-v1-${v}`));
    await mesh.waitForEndpoints(service, (e) => e.length === 3);
    return live;
  }

  /**
   * Replaces the three instances of `service` one by one while `loads` run, and returns
   * what each step saw. The old instance stops once nothing is in flight to it: in the
   * sidecar's count as well (`drainSidecar`), or only in its own (a server cannot see a
   * request the sidecar wrote to a keep-alive connection that it has not read yet).
   */
  async function rollout(service: string, first: Live, loads: readonly LoadLoop[], drainSidecar: boolean): Promise<{ steps: string[]; unread: number }> {
    let live = first;
    await Promise.all(loads.map((l) => l.next(BETWEEN_STEPS, 30_000, 'before the rollout')));
    const steps: string[] = [];
    let unread = 0;
    for (const v of ['a', 'b', 'c']) {
      const started = performance.now();
      const fresh = await startInstance(service, `${service}-v2-${v}`);
      await has(service, fresh.reg);
      const old = live[0] as Live[number];
      await old.reg.deregister();
      await hasNot(service, old.reg);
      const atRemoval = mesh.inFlight(old.reg.endpoint);
      if (drainSidecar) await (loads[0] as LoadLoop).until(() => mesh.inFlight(old.reg.endpoint) === 0, 10_000, `sidecar done with ${old.instance.name}`);
      await old.instance.idle();
      unread += mesh.inFlight(old.reg.endpoint);
      await old.instance.stop();
      live = [...live.slice(1), fresh];
      // Under load between steps; nothing reaches the stopped instance any more.
      const between = await Promise.all(loads.map((l) => l.next(BETWEEN_STEPS, 30_000, `after replacing ${old.instance.name}`)));
      steps.push(`${old.instance.name} → ${fresh.instance.name} in ${Math.round(performance.now() - started)} ms (${atRemoval} in flight at removal)`);
      for (const c of between) assert.equal(c.served(old.instance.name), 0, `${old.instance.name} served after it was stopped`);
    }
    for (const l of loads) await l.until((c) => live.every((x) => c.served(x.instance.name) > 0), 30_000, 'every new instance serving');
    assert.deepEqual(mesh.cluster(service)?.endpoints.map((e) => e.id).sort(), live.map((x) => x.reg.endpoint).sort());
    return { steps, unread };
  }

  it('replaces three instances one by one under load (GET and POST) with zero failed requests', async () => {
    const first = await firstVersion('web');
    const gets = new LoadLoop({ port: mesh.port, authority: 'web:8080', concurrency: CONCURRENCY / 2 });
    const posts = new LoadLoop({ port: mesh.port, authority: 'web:8080', concurrency: CONCURRENCY / 2, body: 'x'.repeat(512) });
    loads.push(gets, posts);
    const { steps } = await rollout('web', first, [gets, posts], true);
    const [g, p] = [await gets.stop(), await posts.stop()];
    console.log(`# rollout: ${steps.join('; ')}`);
    console.log(`# rollout under ${CONCURRENCY} concurrent clients: GET ${g.describe()}; POST ${p.describe()}`);
    assert.equal(g.failed + p.failed, 0, [...g.failures, ...p.failures].slice(0, 10).join('; '));
    assert.ok(g.total >= 4 * BETWEEN_STEPS && p.total >= 4 * BETWEEN_STEPS);
  });

  it('retries GETs the sidecar had sent to an instance that stopped before reading them', async () => {
    // The instance stops as soon as it has nothing in flight itself, closing keep-alive
    // connections that may carry a request it has not read yet: the sidecar retries such
    // a request (no body, nothing came back) on a new connection, which is refused, and
    // Istio's default policy retries the connection failure on another instance.
    const first = await firstVersion('api');
    const gets = new LoadLoop({ port: mesh.port, authority: 'api:8080', concurrency: CONCURRENCY });
    loads.push(gets);
    const { steps, unread } = await rollout('api', first, [gets], false);
    const g = await gets.stop();
    console.log(`# rollout without waiting for the sidecar: ${steps.join('; ')}; the sidecar had ${unread} request(s) in flight to instances as they stopped`);
    console.log(`# ${g.describe()}`);
    assert.equal(g.failed, 0, g.failures.slice(0, 10).join('; '));
  });

  it('lets a request in flight to an endpoint removed from EDS complete, and sends new ones elsewhere', async () => {
    const held = await startInstance('slow', 'slow-a');
    held.instance.behaviour = 'hold';
    await has('slow', held.reg);
    // The only endpoint: the request goes to it and waits there.
    const arrived = new Promise((resolve) => held.instance.events.once('request', resolve));
    const inFlight = new LoadLoop({ port: mesh.port, authority: 'slow:8080', concurrency: 1 });
    try {
      await arrived;
      const other = await startInstance('slow', 'slow-b');
      await has('slow', other.reg);
      await held.reg.deregister();
      await hasNot('slow', held.reg);
      const during = new LoadLoop({ port: mesh.port, authority: 'slow:8080', concurrency: 4 });
      const meanwhile = await during.until((c) => c.total >= 100, 30_000, 'requests after the removal');
      await during.stop();
      assert.equal(inFlight.all.total, 0, 'the held request is still in flight');
      held.instance.release();
      const done = await inFlight.until((c) => c.total >= 1, 10_000, 'the held request');
      const first = done.failures[0] ?? `200 from ${[...done.byBackend.keys()][0]}`;
      console.log(`# removed while in flight: the held request completed with ${first} after the push; ${meanwhile.describe()} meanwhile; slow-a got ${held.instance.requests} request(s) in all`);
      assert.equal(done.failed, 0, first);
      assert.equal(done.served('slow-a'), 1);
      assert.equal(meanwhile.failed, 0, meanwhile.failures.join('; '));
      assert.equal(meanwhile.served('slow-b'), meanwhile.total);
    } finally {
      await inFlight.stop();
    }
    // The only request slow-a ever got was the held one: the loop sent no other after it
    // (its next went to slow-b).
    assert.equal(held.instance.requests, 1);
  });
});
