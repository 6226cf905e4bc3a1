/** Outlier detection with Envoy's semantics, on a fake clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutlierDetector, type TryOutcome } from '../../../src/proxy/resilience/outlier-detection.js';
import { type OutlierSettings, outlierProblem, outlierSettingsOf } from '../../../src/proxy/resilience/outlier-settings.js';
import type { OutlierDetection__Output } from '../../../src/xds/generated/envoy/config/cluster/v3/OutlierDetection.js';
import { FakeClock } from './fake-clock.js';

const HOSTS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
const [A, B, C] = HOSTS as [string, string, string, string];

function settings(over: Partial<OutlierSettings> = {}): OutlierSettings {
  return { ...(outlierSettingsOf({} as OutlierDetection__Output) as OutlierSettings), maxEjectionPercent: 100, ...over };
}

function detector(over: Partial<OutlierSettings> = {}, hosts: readonly string[] = HOSTS, random = () => 0): { d: OutlierDetector; clock: FakeClock; changes: () => number } {
  const clock = new FakeClock();
  const d = new OutlierDetector('outbound|80||web', settings(over), clock, random);
  d.setHosts(hosts);
  let changes = 0;
  d.onEjectionChange(() => changes++);
  return { d, clock, changes: () => changes };
}

function report(d: OutlierDetector, id: string, ...outcomes: TryOutcome[]): void {
  for (const o of outcomes) d.report(id, o);
}

describe('outlier detection settings', () => {
  it('fills in Envoy\'s defaults', () => {
    const s = outlierSettingsOf({} as OutlierDetection__Output) as OutlierSettings;
    assert.deepEqual(s, {
      consecutive5xx: 5, enforcing5xxPercent: 100, consecutiveGatewayFailure: 5, enforcingGatewayPercent: 0,
      splitLocalOrigin: false, consecutiveLocalOriginFailure: 5, enforcingLocalOriginPercent: 100,
      intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionJitterMs: 0,
      maxEjectionPercent: 10, alwaysEjectOneHost: false,
    });
    assert.equal(outlierSettingsOf(null), null);
    // Without max_ejection_time, a base above 300 s is the cap.
    assert.equal(outlierSettingsOf({ base_ejection_time: { seconds: '600', nanos: 0 } } as unknown as OutlierDetection__Output)?.maxEjectionMs, 600_000);
  });

  it('rejects what Envoy rejects', () => {
    const od = (o: object) => o as unknown as OutlierDetection__Output;
    assert.match(outlierProblem(od({ base_ejection_time: { seconds: '60' }, max_ejection_time: { seconds: '30' } })) ?? '', /max_ejection_time cannot be smaller than base_ejection_time/);
    assert.match(outlierProblem(od({ interval: { seconds: '0', nanos: 0 } })) ?? '', /interval must be positive/);
    assert.match(outlierProblem(od({ max_ejection_percent: { value: 101 } })) ?? '', /max_ejection_percent must be at most 100/);
    assert.equal(outlierProblem(od({ base_ejection_time: { seconds: '60' }, max_ejection_time: { seconds: '60' } })), undefined);
  });
});

describe('outlier detection', () => {
  it('ejects a host at once on its Nth consecutive 5xx, and tells the cluster', () => {
    const { d, changes } = detector({ consecutive5xx: 3 });
    report(d, A, 500, 503);
    assert.equal(d.ejected.has(A), false);
    assert.equal(changes(), 0);
    d.report(A, 500);
    assert.deepEqual([...d.ejected], [A]);
    assert.equal(changes(), 1, 'the cluster is told once, to rebuild its picker');
    assert.equal(d.ejections(A), 1);
    assert.deepEqual(d.enforced, [1, 0, 0]);
    d.report(A, 500);
    assert.equal(changes(), 1, 'an ejected host is not ejected again');
  });

  it('a success in between starts the count again; so does any response below 500', () => {
    const { d } = detector({ consecutive5xx: 3 });
    report(d, A, 500, 500, 200, 500, 500, 404, 500, 500, 302, 502, 599);
    assert.equal(d.ejectionsActive, 0);
    d.report(A, 500);
    assert.equal(d.ejected.has(A), true, 'three in a row');
    assert.equal(d.ejected.has(B), false, 'hosts are counted apart');
  });

  it('gateway failures are 502, 503 and 504 only; another 5xx resets their count but not the 5xx count', () => {
    const { d } = detector({ consecutive5xx: 10, consecutiveGatewayFailure: 3, enforcingGatewayPercent: 100 });
    report(d, A, 502, 503, 500, 504, 502);
    assert.equal(d.ejectionsActive, 0, 'the 500 broke the gateway run');
    d.report(A, 503);
    assert.deepEqual([...d.ejected], [A]);
    assert.deepEqual(d.detected, [0, 1, 0]);
    assert.deepEqual(d.enforced, [0, 1, 0]);
  });

  it('gateway failures eject nothing unless enforced (Envoy\'s default enforcing 0)', () => {
    const { d } = detector({ consecutive5xx: 10, consecutiveGatewayFailure: 2 });
    report(d, A, 503, 503, 503, 503);
    assert.equal(d.ejectionsActive, 0);
    assert.equal(d.detected[1], 2, 'detected twice (the count restarts after a detection), never enforced');
    report(d, A, 503, 503, 503, 503, 503, 503);
    assert.equal(d.ejected.has(A), true, 'the tenth 5xx in a row ejects');
    assert.deepEqual(d.enforced, [1, 0, 0]);
  });

  it('enforces a detection with the configured percentage chance', () => {
    let draw = 0.7;
    const { d } = detector({ consecutive5xx: 1, enforcing5xxPercent: 50 }, HOSTS, () => draw);
    d.report(A, 500);
    assert.equal(d.ejected.has(A), false, '0.7 is above 50%');
    draw = 0.2;
    d.report(A, 500);
    assert.equal(d.ejected.has(A), true);
    assert.deepEqual(d.detected, [2, 0, 0]);
  });

  it('without the split, local-origin failures count as the 503/504 the proxy answers for them', () => {
    const { d } = detector({ consecutive5xx: 3, consecutiveGatewayFailure: 3, enforcingGatewayPercent: 100 });
    report(d, A, 'connect-failure', 'reset', 'timeout');
    assert.equal(d.ejected.has(A), true, 'three gateway failures (503, 503, 504) and three 5xx');
    report(d, B, 'connect-failure', 500, 'timeout');
    assert.equal(d.ejected.has(B), true, 'three 5xx in a row (the 500 breaks only the gateway run)');
    assert.deepEqual(d.detected, [1, 1, 0], 'A: gateway first, then the 5xx check finds it ejected; B: 5xx');
  });

  it('with the split, local-origin failures have their own count; any real response resets it', () => {
    const { d } = detector({ splitLocalOrigin: true, consecutive5xx: 2, consecutiveLocalOriginFailure: 3 });
    report(d, A, 'connect-failure', 'timeout', 'reset', 'connect-failure');
    assert.equal(d.ejected.has(B), false);
    assert.equal(d.ejected.has(A), true, 'three local-origin failures');
    assert.deepEqual(d.detected, [0, 0, 1]);
    report(d, B, 'timeout', 'timeout', 500, 'timeout', 'timeout');
    assert.equal(d.ejected.has(B), false, 'the 500 reset the local-origin count, and local failures are not 5xx');
    d.report(B, 500);
    assert.equal(d.ejected.has(B), true, 'two 5xx responses in a row (the timeouts did not reset them)');
  });

  it('caps ejections at max_ejection_percent of the hosts, counting the host being ejected', () => {
    const { d } = detector({ consecutive5xx: 1, maxEjectionPercent: 50 });
    report(d, A, 500);
    report(d, B, 500);
    report(d, C, 500);
    assert.deepEqual([...d.ejected].sort(), [A, B], '2 of 4 is 50%; a third would be 75%');
    assert.equal(d.overflow, 1);
  });

  it('ejects nothing when one host is already too many, unless always_eject_one_host', () => {
    const small = detector({ consecutive5xx: 1, maxEjectionPercent: 10 }, [A, B, C]).d;
    small.report(A, 500);
    assert.equal(small.ejectionsActive, 0, '1 of 3 is over 10% (current Envoy)');
    assert.equal(small.overflow, 1);
    const always = detector({ consecutive5xx: 1, maxEjectionPercent: 10, alwaysEjectOneHost: true }, [A, B, C]).d;
    always.report(A, 500);
    always.report(B, 500);
    assert.deepEqual([...always.ejected], [A], 'the first one only');
  });

  it('returns a host at the first sweep after its ejection time, and tells the cluster', () => {
    const { d, clock, changes } = detector({ consecutive5xx: 2, intervalMs: 10_000, baseEjectionMs: 30_000 });
    clock.advance(5_000);
    report(d, A, 500, 500);
    d.report(A, 500); // a request that was in flight: counted while ejected
    clock.advance(25_000); // sweeps at 10 s, 20 s, 30 s: 25 s ejected
    assert.equal(d.ejected.has(A), true);
    clock.advance(10_000); // sweep at 40 s: 35 s ejected
    assert.equal(d.ejected.has(A), false);
    assert.equal(changes(), 2, 'ejected, returned');
    d.report(A, 500);
    assert.equal(d.ejected.has(A), false, 'counters start again from 0 after a return');
    d.report(A, 500);
    assert.equal(d.ejected.has(A), true);
  });

  it('ejects for longer each time a host fails again soon, up to max_ejection_time; healthy sweeps bring it down', () => {
    const { d, clock } = detector({ consecutive5xx: 1, intervalMs: 1_000, baseEjectionMs: 10_000, maxEjectionMs: 25_000 });
    const outFor = (): number => {
      d.report(A, 500);
      assert.equal(d.ejected.has(A), true);
      let ms = 0;
      while (d.ejected.has(A)) {
        clock.advance(1_000);
        ms += 1_000;
      }
      return ms;
    };
    assert.equal(outFor(), 10_000);
    assert.equal(outFor(), 20_000, 'base × 2');
    assert.equal(outFor(), 25_000, 'capped by max_ejection_time');
    assert.equal(outFor(), 25_000);
    assert.equal(d.ejections(A), 4);
    // Each sweep a host stays in takes one step off its multiplier, now 4 (Envoy stops
    // it one step past the cap).
    clock.advance(3_000);
    assert.equal(outFor(), 20_000, 'three healthy sweeps: 4 - 3 + 1 = 2 × base');
    clock.advance(2_000);
    assert.equal(outFor(), 10_000, 'back to the base time');
  });

  it('adds up to max_ejection_time_jitter to an ejection', () => {
    const { d, clock } = detector({ consecutive5xx: 1, intervalMs: 1_000, baseEjectionMs: 10_000, maxEjectionJitterMs: 4_000 }, HOSTS, () => 0.5);
    d.report(A, 500);
    clock.advance(11_000);
    assert.equal(d.ejected.has(A), true, '0.5 × 4,001 ms = 2,000 ms of jitter');
    clock.advance(1_000);
    assert.equal(d.ejected.has(A), false);
  });

  it('forgets hosts that leave the cluster; one that comes back starts fresh', () => {
    const { d } = detector({ consecutive5xx: 2, maxEjectionPercent: 50 });
    report(d, A, 500, 500);
    report(d, B, 500);
    d.setHosts([B, C]);
    assert.equal(d.ejectionsActive, 0, 'the ejected host left');
    d.report(B, 500);
    assert.equal(d.ejected.has(B), true, 'B kept its count');
    d.setHosts([A, B, C]);
    d.report(A, 500);
    assert.equal(d.ejected.has(A), false, 'A came back without its history');
    assert.equal(d.ejections(A), 0);
    d.report('10.9.9.9:80', 500); // not a host of the cluster: ignored
  });

  it('applies new settings without losing its hosts\' state, and stops its timer when closed', () => {
    const { d, clock } = detector({ consecutive5xx: 3, intervalMs: 10_000 });
    report(d, A, 500, 500);
    d.configure(settings({ consecutive5xx: 3, intervalMs: 1_000 }));
    d.report(A, 500);
    assert.equal(d.ejected.has(A), true);
    assert.equal(clock.timers, 1, 'the sweep timer was re-armed, not doubled');
    clock.advance(31_000);
    assert.equal(d.ejected.has(A), false, 'swept every second now');
    d.close();
    assert.equal(clock.timers, 0);
  });
});
