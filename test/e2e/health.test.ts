/**
 * Endpoint health end to end. Instances registered at run time report their readiness
 * with heartbeats (`{healthy: false}`); the sidecar sends nothing to one that is not
 * ready. When no endpoint is available, Istio's default (`minHealthPercent` 0: panic mode
 * off) answers `503 UH no healthy upstream`. With `minHealthPercent` set, a cluster whose
 * available share falls below it panics and balances over all its endpoints — the ones
 * outlier detection ejected included, but never one that is not ready (Istio does not let
 * panic reach those).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Instance } from './instances.js';
import { type Counts, LoadLoop } from './load-loop.js';
import { Mesh, type Registration, serviceYaml } from './mesh.js';

const REQUESTS = 200;

/** `minHealthPercent` exists only inside `outlierDetection`, as in Istio's API. */
function rule(service: string, outlierDetection: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${service}}
spec: {host: ${service}, trafficPolicy: {outlierDetection: ${outlierDetection}}}
`;
}

/** Ejects at the first 5xx, may eject every host, and keeps them out for the whole test. */
const EJECT_ALL = 'consecutive5xxErrors: 1, interval: 0.2s, baseEjectionTime: 60s, maxEjectionPercent: 100';

const SERVICES = {
  plain: '', // no DestinationRule
  guarded: rule('guarded', `{${EJECT_ALL}, minHealthPercent: 50}`),
  panicky: rule('panicky', `{${EJECT_ALL}, minHealthPercent: 50}`),
  strict: rule('strict', `{${EJECT_ALL}}`),
} as const;
type Service = keyof typeof SERVICES;

describe('endpoint health through the sidecar', { timeout: 120_000 }, () => {
  let mesh: Mesh;
  const instances = new Map<string, Instance>();
  const regs = new Map<string, Registration>();

  before(async () => {
    mesh = await Mesh.start({ yaml: Object.entries(SERVICES).map(([name, dr]) => serviceYaml(name) + (dr === '' ? '' : `---\n${dr}`)).join('---\n') });
    for (const service of Object.keys(SERVICES)) {
      for (const name of [`${service}-a`, `${service}-b`]) {
        const instance = await Instance.start(name);
        instances.set(name, instance);
        regs.set(name, await mesh.register(service, name, instance.port));
      }
      await mesh.waitForEndpoints(service, (e) => e.length === 2);
    }
  });

  after(async () => {
    await mesh?.close();
    await Promise.all([...instances.values()].map((i) => i.kill()));
  });

  /** Reports `name`'s readiness in a heartbeat; waits until the sidecar has its new health, or has it no more. */
  async function setReady(service: Service, name: string, healthy: boolean, listedWhenUnhealthy = true): Promise<void> {
    const reg = regs.get(name) as Registration;
    await reg.heartbeat(healthy);
    await mesh.waitForEndpoints(service, (list) => {
      const e = list.find((x) => x.id === reg.endpoint);
      return healthy ? e?.healthy === true : listedWhenUnhealthy ? e?.healthy === false : e === undefined;
    });
  }

  async function send(service: Service, n: number): Promise<Counts> {
    const load = new LoadLoop({ port: mesh.port, authority: `${service}:8080`, concurrency: 4 });
    await load.until((c) => c.total >= n, 30_000, `${n} requests to ${service}`);
    return load.stop();
  }

  const calls = (): number => [...instances.values()].reduce((n, i) => n + i.requests, 0);
  const ejected = (service: Service): number => mesh.cluster(service)?.outlier?.ejectionsActive ?? 0;

  it('sends nothing to an endpoint its registration reports not ready', async () => {
    await setReady('plain', 'plain-a', false);
    const c = await send('plain', REQUESTS);
    console.log(`# plain-a not ready: ${c.describe()}`);
    assert.equal(c.failed, 0, c.failures.join('; '));
    assert.equal(c.served('plain-a'), 0);
    await setReady('plain', 'plain-a', true);
    const again = await send('plain', REQUESTS);
    console.log(`# plain-a ready again: ${again.describe()}`);
    assert.ok(again.served('plain-a') > 0 && again.served('plain-b') > 0, again.describe());
  });

  it('answers 503 UH when no endpoint is ready (Istio\'s default: no panic mode)', async () => {
    await setReady('plain', 'plain-a', false);
    await setReady('plain', 'plain-b', false);
    const before = calls();
    const c = await send('plain', 50);
    console.log(`# plain, no endpoint ready: ${c.describe()}; first failure: ${c.failures[0]}`);
    assert.equal(c.ok, 0);
    assert.ok(c.failures.every((f) => f === '503 no healthy upstream'), c.failures[0]);
    assert.equal(calls(), before, 'no instance was called');
    assert.match(mesh.sidecar.metrics.render(), /destination_service_name="plain".*response_code="503".*response_flags="UH"/);
  });

  it('never panics onto instances that are not ready, even with minHealthPercent', async () => {
    // With a panic threshold the control plane leaves instances that are not ready out of
    // the endpoints (as Istio does), so they neither get traffic nor count.
    await setReady('guarded', 'guarded-a', false, false);
    const one = await send('guarded', REQUESTS);
    console.log(`# guarded (minHealthPercent 50), guarded-a not ready: ${one.describe()}`);
    assert.equal(one.served('guarded-b'), one.total);
    await setReady('guarded', 'guarded-b', false, false);
    const before = calls();
    const none = await send('guarded', 50);
    console.log(`# guarded, no instance ready: ${none.describe()}; first failure: ${none.failures[0]}`);
    assert.ok(none.failures.every((f) => f === '503 no healthy upstream'), none.failures[0]);
    assert.equal(calls(), before, 'no instance that is not ready was called');
  });

  it('balances over ejected endpoints in panic mode when minHealthPercent is set, and answers 503 UH without it', async () => {
    for (const name of ['panicky-a', 'panicky-b', 'strict-a', 'strict-b']) (instances.get(name) as Instance).behaviour = 'fail';
    const panicky = new LoadLoop({ port: mesh.port, authority: 'panicky:8080', concurrency: 4 });
    const strict = new LoadLoop({ port: mesh.port, authority: 'strict:8080', concurrency: 4 });
    try {
      await panicky.until(() => ejected('panicky') === 2, 10_000, 'both panicky instances ejected');
      await strict.until(() => ejected('strict') === 2, 10_000, 'both strict instances ejected');
      const [inPanic, noPanic] = await Promise.all([panicky.next(REQUESTS, 30_000, 'panicky'), strict.next(REQUESTS, 30_000, 'strict')]);
      const byInstance = (c: Counts, service: string): string => ['a', 'b'].map((x) => `${service}-${x} ${c.failures.filter((f) => f === `503 ${service}-${x} failed`).length}`).join(', ');
      console.log(`# every endpoint ejected: with minHealthPercent 50 (panic) the instances answered ${byInstance(inPanic, 'panicky')} of ${inPanic.total}; without it ${noPanic.failures.filter((f) => f === '503 no healthy upstream').length} of ${noPanic.total} got 503 UH`);
      assert.ok(inPanic.failures.every((f) => /^503 panicky-[ab] failed$/.test(f)), inPanic.failures[0]);
      assert.ok(['a', 'b'].every((x) => inPanic.failures.some((f) => f === `503 panicky-${x} failed`)), 'panic balances over both ejected instances');
      assert.ok(noPanic.failures.every((f) => f === '503 no healthy upstream'), noPanic.failures[0]);
    } finally {
      await Promise.all([panicky.stop(), strict.stop()]);
    }
  });
});
