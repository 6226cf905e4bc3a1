/**
 * The ClusterRuntime objects that `buildCluster` makes: fixed fields, and a picker that
 * is rebuilt and swapped whole (STYLE 14) whenever the cluster's outlier detector ejects
 * or returns a host. Only the newest build of a cluster name listens to its detector
 * (`activate()`); an older one, still held by requests in flight, keeps its last picker.
 */
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { OutlierDetector } from '../resilience/outlier-detection.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import type { Endpoint, EndpointState, LbConfig, LoadBalancer, Picker } from '../upstream/lb/types.js';
import type { ClusterKind, ClusterRuntime, UpstreamProtocol } from './clusters.js';
import type { PoolSettings } from './pool-settings.js';

/** Everything but the picker, which the cluster builds. */
export type ClusterFields = Omit<ClusterRuntime, 'picker'>;

const NO_HOST: Picker = { pick: () => undefined };

/** A ClusterRuntime whose picker is rebuilt when its outlier detector's ejections change. */
export class LiveCluster implements ClusterRuntime {
  readonly name: string;
  readonly kind: ClusterKind;
  readonly endpoints: readonly Endpoint[];
  picker: Picker = NO_HOST;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: string;
  readonly protocol: UpstreamProtocol;
  readonly maxConcurrentStreams: number;
  readonly service: string;
  readonly outlier: OutlierDetector | null;
  readonly breaker: CircuitBreaker;
  readonly retryBudget: RetryBudget;
  readonly pool: PoolSettings;
  readonly panicThresholdPercent: number;
  readonly #lb: LoadBalancer | undefined;
  readonly #config: LbConfig;
  readonly #state: (id: string) => EndpointState;
  /** The detector's generation the picker was built at; -1 before the first build. */
  #generation = -1;

  constructor(f: ClusterFields, lb: LoadBalancer | undefined, config: LbConfig, state: (id: string) => EndpointState) {
    this.name = f.name;
    this.kind = f.kind;
    this.endpoints = f.endpoints;
    this.connectTimeoutMs = f.connectTimeoutMs;
    this.lbPolicy = f.lbPolicy;
    this.protocol = f.protocol;
    this.maxConcurrentStreams = f.maxConcurrentStreams;
    this.service = f.service;
    this.outlier = f.outlier;
    this.breaker = f.breaker;
    this.retryBudget = f.retryBudget;
    this.pool = f.pool;
    this.panicThresholdPercent = f.panicThresholdPercent;
    this.#lb = lb;
    this.#config = config;
    this.#state = state;
  }

  /** Takes over the detector's ejection changes; rebuilds the picker if it is stale (or not built yet). */
  activate(): void {
    this.outlier?.onEjectionChange(() => this.#rebuild());
    if (this.#generation !== (this.outlier?.generation ?? 0)) this.#rebuild();
  }

  /** Builds a picker over the endpoints that are not ejected now, and swaps it in. */
  #rebuild(): void {
    this.#generation = this.outlier?.generation ?? 0;
    if (this.#lb === undefined) return;
    const config = this.outlier === null ? this.#config : { ...this.#config, ejected: this.outlier.ejected };
    this.picker = this.#lb.build(this.endpoints, this.#state, config);
  }
}
