/**
 * Outlier detection (passive health checking) for one cluster, with Envoy's semantics
 * (arch overview "Outlier detection", `outlier_detection_impl.cc`):
 *
 * - Each finished try is reported with its outcome: the status of a real upstream
 *   response, or a local-origin failure (connect failure, timeout, reset). Without
 *   `split_external_local_origin_errors`, a local-origin failure counts as the 5xx the
 *   proxy answers for it (503 for connect failures and resets, 504 for timeouts), as
 *   Envoy maps them; with the split it counts only towards
 *   `consecutive_local_origin_failure`, and any real response resets that counter.
 * - consecutive_5xx counts every 5xx; consecutive_gateway_failure counts 502, 503 and
 *   504 (another 5xx resets it); a response below 500 resets both. When a counter
 *   reaches its threshold the host is ejected at once — unless it is ejected already,
 *   the detection is not enforced (`enforcing_*`, a percentage chance), or ejecting it
 *   would put more than `max_ejection_percent` of the cluster's hosts out. Current
 *   Envoy counts the host being ejected, 100 × (ejected + 1) / hosts ≤ max
 *   (envoyproxy/envoy#27909; older versions always let the first one through, which
 *   `always_eject_one_host` now asks for, #34796). The counter that fired starts again
 *   from 0.
 * - An ejection lasts `base_ejection_time` × the host's multiplier (+1 per ejection,
 *   capped so the time stays within `max_ejection_time`, plus up to
 *   `max_ejection_time_jitter`). Every `interval` a sweep returns the hosts whose time is
 *   up and takes 1 off the multiplier of each host that was not ejected, so a host that
 *   fails again soon after returning stays out longer, and one that stays healthy works
 *   its way back to the base time. A returned host starts with all its counters at 0
 *   (Envoy resets the 5xx and gateway counters; the local-origin one too here, for the
 *   same reason: a few new errors must not re-eject at once).
 *
 * One detector per cluster name, living as long as the cluster does and across its
 * rebuilds (owned by `ResilienceRegistry`); hosts are tracked by endpoint id, and a host
 * that leaves the cluster forgets its history. When the set of ejected hosts changes,
 * the detector calls its listener, which builds and swaps the cluster's picker: an
 * ejected host gets no new requests (unless the cluster is in panic, as in Envoy).
 *
 * `report()` is on the request path: a Map lookup and a few integer operations, no
 * allocation; it builds a picker only when it ejects.
 */
import { type Clock, SYSTEM_CLOCK, type Ticker } from './clock.js';
import type { OutlierSettings } from './outlier-settings.js';

/** A failure of the proxy's own making, before or instead of an upstream response. */
export type LocalOriginFailure = 'connect-failure' | 'timeout' | 'reset';

/** What a finished try tells the detector: the status of a real upstream response, or a local-origin failure. */
export type TryOutcome = number | LocalOriginFailure;

/** The consecutive-error checks, as Envoy names their stats. */
export const EJECTION_TYPES = ['consecutive_5xx', 'consecutive_gateway_failure', 'consecutive_local_origin_failure'] as const;
export type EjectionType = (typeof EJECTION_TYPES)[number];

const FIVE_XX = 0;
const GATEWAY = 1;
const LOCAL_ORIGIN = 2;

/** Per-host state; one per endpoint id of the cluster. */
class HostMonitor {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocalOrigin = 0;
  ejected = false;
  /** Times ejected since the host joined the cluster. */
  ejections = 0;
  /** Envoy's `ejectTimeBackoff`: the ejection time is base × this. */
  multiplier = 0;
  ejectedAtMs = 0;
  jitterMs = 0;
}

export class OutlierDetector {
  readonly cluster: string;
  #settings: OutlierSettings;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #hosts = new Map<string, HostMonitor>();
  readonly #ejected = new Set<string>();
  #ticker: Ticker;
  #tickerIntervalMs: number;
  #listener: (() => void) | null = null;
  #generation = 0;
  /** Detections per EJECTION_TYPES index (Envoy's `ejections_detected_*`). */
  readonly detected = [0, 0, 0];
  /** Ejections per EJECTION_TYPES index (Envoy's `ejections_enforced_*`). */
  readonly enforced = [0, 0, 0];
  /** Ejections refused by `max_ejection_percent` (Envoy's `ejections_overflow`). */
  overflow = 0;

  /** `random` returns [0, 1) and decides enforcement below 100% and jitter (tests fix it). */
  constructor(cluster: string, settings: OutlierSettings, clock: Clock = SYSTEM_CLOCK, random: () => number = Math.random) {
    this.cluster = cluster;
    this.#settings = settings;
    this.#clock = clock;
    this.#random = random;
    this.#tickerIntervalMs = settings.intervalMs;
    this.#ticker = clock.every(settings.intervalMs, () => this.sweep());
  }

  get settings(): OutlierSettings {
    return this.#settings;
  }

  /** Applies new settings (a cluster update); hosts keep their state. */
  configure(settings: OutlierSettings): void {
    this.#settings = settings;
    if (settings.intervalMs !== this.#tickerIntervalMs) {
      this.#ticker.stop();
      this.#tickerIntervalMs = settings.intervalMs;
      this.#ticker = this.#clock.every(settings.intervalMs, () => this.sweep());
    }
  }

  /**
   * The cluster's endpoints now: new ids start fresh, ids no longer there are forgotten
   * (ejected or not). Called when the cluster is built; the caller builds its picker
   * after this, so no listener is called.
   */
  setHosts(ids: Iterable<string>): void {
    const live = new Set(ids);
    for (const id of this.#hosts.keys()) {
      if (live.has(id)) continue;
      this.#hosts.delete(id);
      if (this.#ejected.delete(id)) this.#generation++;
    }
    for (const id of live) if (!this.#hosts.has(id)) this.#hosts.set(id, new HostMonitor());
  }

  /** Called (synchronously) whenever the ejected set changes; null stops the calls. */
  onEjectionChange(listener: (() => void) | null): void {
    this.#listener = listener;
  }

  /** The ids of the hosts ejected now. Read it when building a picker; do not keep it. */
  get ejected(): ReadonlySet<string> {
    return this.#ejected;
  }

  /** Changes whenever the ejected set changes: a picker built at another generation is stale. */
  get generation(): number {
    return this.#generation;
  }

  get ejectionsActive(): number {
    return this.#ejected.size;
  }

  /** Times the host was ejected since it joined the cluster; 0 for unknown ids. */
  ejections(id: string): number {
    return this.#hosts.get(id)?.ejections ?? 0;
  }

  /**
   * Reports how one try to `endpointId` ended; called once per finished try (first tries
   * and retries alike). Unknown ids are ignored. Never throws.
   */
  report(endpointId: string, outcome: TryOutcome): void {
    const h = this.#hosts.get(endpointId);
    if (h === undefined) return;
    if (typeof outcome === 'number') {
      // A real response: the connection worked (Envoy's LocalOriginConnectSuccess).
      h.consecutiveLocalOrigin = 0;
      this.#status(endpointId, h, outcome);
    } else if (this.#settings.splitLocalOrigin) {
      if (++h.consecutiveLocalOrigin === this.#settings.consecutiveLocalOriginFailure) this.#detected(endpointId, h, LOCAL_ORIGIN);
    } else {
      // Envoy's resultToHttpCode: a timeout is the 504 the proxy answers, the rest 503.
      this.#status(endpointId, h, outcome === 'timeout' ? 504 : 503);
    }
  }

  #status(id: string, h: HostMonitor, status: number): void {
    if (status < 500 || status > 599) {
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return;
    }
    const s = this.#settings;
    if (status >= 502 && status <= 504) {
      if (++h.consecutiveGateway === s.consecutiveGatewayFailure) this.#detected(id, h, GATEWAY);
    } else {
      h.consecutiveGateway = 0;
    }
    if (++h.consecutive5xx === s.consecutive5xx) this.#detected(id, h, FIVE_XX);
  }

  #detected(id: string, h: HostMonitor, type: number): void {
    if (h.ejected) return;
    this.detected[type] = (this.detected[type] as number) + 1;
    this.#eject(id, h, type);
    if (type === FIVE_XX) h.consecutive5xx = 0;
    else if (type === GATEWAY) h.consecutiveGateway = 0;
    else h.consecutiveLocalOrigin = 0;
  }

  #eject(id: string, h: HostMonitor, type: number): void {
    const s = this.#settings;
    const active = this.#ejected.size;
    const allowed = (100 * (active + 1)) / this.#hosts.size <= s.maxEjectionPercent || (s.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.overflow++;
      return;
    }
    const percent = type === FIVE_XX ? s.enforcing5xxPercent : type === GATEWAY ? s.enforcingGatewayPercent : s.enforcingLocalOriginPercent;
    if (percent < 100 && !(this.#random() * 100 < percent)) return;
    this.enforced[type] = (this.enforced[type] as number) + 1;
    h.ejected = true;
    h.ejections++;
    h.ejectedAtMs = this.#clock.now();
    // Envoy grows the multiplier while base × multiplier < max + base, so the time
    // reaches the cap and the multiplier stops one step beyond it.
    if (h.multiplier * s.baseEjectionMs < s.maxEjectionMs + s.baseEjectionMs) h.multiplier++;
    h.jitterMs = s.maxEjectionJitterMs > 0 ? Math.floor(this.#random() * (s.maxEjectionJitterMs + 1)) : 0;
    this.#ejected.add(id);
    this.#changed();
  }

  /** One interval's sweep: returns hosts whose time is up, lowers the multiplier of the others. */
  sweep(): void {
    const s = this.#settings;
    const now = this.#clock.now();
    let returned = false;
    for (const [id, h] of this.#hosts) {
      if (!h.ejected) {
        if (h.multiplier > 0) h.multiplier--;
        continue;
      }
      const timeMs = Math.min(s.baseEjectionMs * h.multiplier, s.maxEjectionMs) + h.jitterMs;
      if (now - h.ejectedAtMs < timeMs) continue;
      h.ejected = false;
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      h.consecutiveLocalOrigin = 0;
      this.#ejected.delete(id);
      returned = true;
    }
    if (returned) this.#changed();
  }

  #changed(): void {
    this.#generation++;
    this.#listener?.();
  }

  /** Stops the sweeps (the cluster went away, or lost its outlier detection). */
  close(): void {
    this.#ticker.stop();
    this.#listener = null;
  }
}
