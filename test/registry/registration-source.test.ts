/** Run-time registrations: TTL expiry on a fake clock, heartbeats, deregistration, validation. */
import { isTrellisError } from '../../src/core/errors.js';
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Clock } from '../../src/registry/clock.js';
import type { RegistrationInput } from '../../src/registry/registration-input.js';
import { DEFAULT_REGISTRATION_TTL_MS, RegistrationRegistry, type RegistrationRegistryOptions } from '../../src/registry/registration-source.js';
import { FakeClock } from './fake-clock.js';

const INPUT: RegistrationInput = {
  name: 'ratings-1',
  namespace: 'default',
  serviceAccount: 'bookinfo-ratings',
  labels: { app: 'ratings', version: 'v1' },
  address: '127.0.0.1',
  ports: { http: 19080 },
  locality: 'eu-west/zone-b',
};

function setup(t: TestContext, options: RegistrationRegistryOptions = {}) {
  const clock = new FakeClock();
  let n = 0;
  const registry = new RegistrationRegistry({ clock, newId: () => `id-${++n}`, ...options });
  t.after(() => registry.close());
  const notified: number[] = [];
  t.after(registry.subscribe(() => notified.push(clock.now())));
  const register = (input: Partial<RegistrationInput> = {}): string => {
    const result = registry.register({ ...INPUT, ...input });
    assert.ok(result.ok, JSON.stringify(result));
    return result.id;
  };
  const ids = () => registry.snapshot().workloads.map((w) => w.id);
  return { clock, registry, notified, register, ids };
}

describe('RegistrationRegistry', { timeout: 10_000 }, () => {
  it('registers a workload with its fields, defaults and the TTL', (t) => {
    const { registry } = setup(t);
    const result = registry.register(INPUT);
    assert.deepEqual(result, { ok: true, id: 'id-1', ttlMs: DEFAULT_REGISTRATION_TTL_MS, workloadId: 'registration/id-1' });
    assert.deepEqual(registry.snapshot().workloads, [
      {
        id: 'registration/id-1',
        name: 'ratings-1',
        namespace: 'default',
        address: '127.0.0.1',
        ports: { http: 19080 },
        labels: { app: 'ratings', version: 'v1' },
        serviceAccount: 'bookinfo-ratings',
        locality: { region: 'eu-west', zone: 'zone-b', subzone: '' },
        weight: 1,
        network: '',
        healthy: true,
        source: 'registration',
      },
    ]);
  });

  it('removes a registration exactly when the TTL passes, and notifies at that moment', (t) => {
    const { clock, notified, register, ids } = setup(t);
    const start = clock.now();
    register();
    notified.length = 0;
    clock.advance(DEFAULT_REGISTRATION_TTL_MS - 1);
    assert.deepEqual(ids(), ['registration/id-1']);
    assert.deepEqual(notified, []);
    clock.advance(1);
    assert.deepEqual(ids(), []);
    assert.deepEqual(notified, [start + DEFAULT_REGISTRATION_TTL_MS]);
    assert.equal(clock.pendingTimers, 0);
  });

  it('keeps a heartbeating registration alive, and expires it a TTL after the last heartbeat', (t) => {
    const { clock, registry, notified, register, ids } = setup(t);
    const id = register();
    notified.length = 0;
    for (let i = 0; i < 5; i++) {
      clock.advance(3_000);
      assert.equal(registry.heartbeat(id), true);
    }
    const last = clock.now();
    clock.advance(DEFAULT_REGISTRATION_TTL_MS - 1);
    assert.deepEqual(ids(), ['registration/id-1']);
    assert.deepEqual(notified, [], 'heartbeats change no snapshot');
    clock.advance(1);
    assert.deepEqual(ids(), []);
    assert.deepEqual(notified, [last + DEFAULT_REGISTRATION_TTL_MS]);
    assert.equal(registry.heartbeat(id), false);
  });

  it('keeps a single timer, due at the earliest expiry', (t) => {
    const { clock, registry, notified, register, ids } = setup(t, { ttlMs: 1_000 });
    const start = clock.now();
    const a = register({ name: 'a' });
    clock.advance(100);
    register({ name: 'b' });
    clock.advance(100);
    register({ name: 'c' });
    assert.equal(clock.pendingTimers, 1);
    clock.advance(50);
    registry.heartbeat(a); // a now expires at start + 1250, after b (1100) and c (1200)
    assert.equal(clock.pendingTimers, 1);
    notified.length = 0;
    clock.advance(1_100 - 250 - 1); // just before b expires
    assert.deepEqual(ids(), ['registration/id-1', 'registration/id-2', 'registration/id-3']);
    clock.advance(1);
    assert.deepEqual(ids(), ['registration/id-1', 'registration/id-3']);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(100);
    assert.deepEqual(ids(), ['registration/id-1']);
    clock.advance(49);
    assert.deepEqual(ids(), ['registration/id-1']);
    clock.advance(1);
    assert.deepEqual(ids(), []);
    assert.deepEqual(notified, [start + 1_100, start + 1_200, start + 1_250]);
    assert.equal(clock.pendingTimers, 0);
  });

  it('notifies once when several registrations expire together', (t) => {
    const { clock, notified, register, ids } = setup(t);
    register({ name: 'a' });
    register({ name: 'b' });
    notified.length = 0;
    clock.advance(DEFAULT_REGISTRATION_TTL_MS);
    assert.deepEqual(ids(), []);
    assert.equal(notified.length, 1);
  });

  it('deregisters at once; unknown ids are reported as false', (t) => {
    const { clock, registry, notified, register, ids } = setup(t);
    const id = register();
    notified.length = 0;
    assert.equal(registry.deregister(id), true);
    assert.deepEqual(ids(), []);
    assert.equal(notified.length, 1);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(registry.deregister(id), false);
    assert.equal(registry.heartbeat(id), false);
    assert.equal(registry.heartbeat('never-registered'), false);
    assert.equal(notified.length, 1);
  });

  it('reports readiness from heartbeats as workload health', (t) => {
    const { registry, notified, register } = setup(t);
    const id = register({ healthy: false });
    assert.equal(registry.snapshot().workloads[0]?.healthy, false);
    notified.length = 0;
    assert.equal(registry.heartbeat(id, { healthy: false }), true);
    assert.equal(notified.length, 0, 'no change, no notification');
    assert.equal(registry.heartbeat(id, { healthy: true }), true);
    assert.equal(notified.length, 1);
    assert.equal(registry.snapshot().workloads[0]?.healthy, true);
  });

  it('treats a heartbeat after the TTL as expired even when the timer has not run yet', (t) => {
    let now = 0;
    const lateClock: Clock = { now: () => now, setTimer: () => ({ cancel() {} }) }; // timers never fire
    const registry = new RegistrationRegistry({ clock: lateClock, ttlMs: 1_000 });
    t.after(() => registry.close());
    let changes = 0;
    t.after(registry.subscribe(() => changes++));
    const result = registry.register(INPUT);
    assert.ok(result.ok);
    now = 999;
    assert.equal(registry.heartbeat(result.id), true);
    now = 999 + 1_000;
    assert.equal(registry.heartbeat(result.id), false);
    assert.deepEqual(registry.snapshot().workloads, []);
    assert.equal(changes, 2);
  });

  it('lists registrations with their heartbeat times', (t) => {
    const { clock, registry, register } = setup(t);
    const start = clock.now();
    const id = register();
    clock.advance(2_500);
    registry.heartbeat(id);
    const [info] = registry.list();
    assert.ok(info !== undefined);
    assert.deepEqual(
      { id: info.id, workloadId: info.workload.id, registeredAt: info.registeredAt, lastHeartbeat: info.lastHeartbeat, expiresAt: info.expiresAt },
      { id, workloadId: `registration/${id}`, registeredAt: start, lastHeartbeat: start + 2_500, expiresAt: start + 2_500 + DEFAULT_REGISTRATION_TTL_MS },
    );
  });

  it('close() cancels the expiry timer', (t) => {
    const { clock, registry, register } = setup(t);
    register();
    assert.equal(clock.pendingTimers, 1);
    registry.close();
    assert.equal(clock.pendingTimers, 0);
  });

  it('rejects a TTL that is not a positive number of milliseconds', () => {
    assert.throws(() => new RegistrationRegistry({ ttlMs: 0 }), (e) => isTrellisError(e, 'TRELLIS_REGISTRY_INVALID_OPTION'));
    assert.throws(() => new RegistrationRegistry({ ttlMs: Number.NaN }), (e) => isTrellisError(e, 'TRELLIS_REGISTRY_INVALID_OPTION'));
  });

  it('reports every invalid field by name, without throwing or registering', (t) => {
    const { registry, notified } = setup(t);
    const bad = {
      ...INPUT,
      namespace: 'Not_A_Label',
      address: '300.1.2.3',
      ports: { http: 70000, 'bad name': 80 },
      labels: { app: 'has spaces' },
      locality: 'a/b/c/d',
      weight: -1,
      colour: 'blue',
    } as unknown as RegistrationInput;
    const result = registry.register(bad);
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.deepEqual(result.errors.map((e) => `${e.field} ${e.code}`).sort(), [
      'address TRELLIS_CONFIG_INVALID_VALUE',
      'colour TRELLIS_CONFIG_UNKNOWN_FIELD',
      'labels.app TRELLIS_CONFIG_INVALID_VALUE',
      'locality TRELLIS_CONFIG_INVALID_VALUE',
      'namespace TRELLIS_CONFIG_INVALID_VALUE',
      'ports.http TRELLIS_CONFIG_OUT_OF_RANGE',
      'ports["bad name"] TRELLIS_CONFIG_INVALID_VALUE',
      'weight TRELLIS_CONFIG_OUT_OF_RANGE',
    ]);
    assert.match(result.errors.find((e) => e.field === 'address')?.message ?? '', /not an IPv4 or IPv6 address/);
    assert.deepEqual(registry.snapshot().workloads, []);
    assert.deepEqual(notified, []);
  });

  it('reports missing required fields, and a body that is not an object', (t) => {
    const { registry } = setup(t);
    const missing = registry.register({ address: '10.0.0.1' } as unknown as RegistrationInput);
    assert.ok(!missing.ok);
    assert.deepEqual(missing.errors.map((e) => `${e.field} ${e.code}`), [
      'namespace TRELLIS_CONFIG_REQUIRED',
      'serviceAccount TRELLIS_CONFIG_REQUIRED',
      'labels TRELLIS_CONFIG_REQUIRED',
      'ports TRELLIS_CONFIG_REQUIRED',
    ]);
    const notObject = registry.register('hello' as unknown as RegistrationInput);
    assert.ok(!notObject.ok);
    assert.deepEqual(notObject.errors.map((e) => `${e.field}|${e.code}`), ['|TRELLIS_CONFIG_WRONG_TYPE']);
  });
});
