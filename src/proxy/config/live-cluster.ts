/**
 * The ClusterRuntime objects that `buildCluster` makes: fixed fields, and a picker that
 * is rebuilt and swapped whole (STYLE 14) whenever the cluster's outlier detector ejects
 * or returns a host. Only the newest build of a cluster name listens to its detector
 * (`activate()`); an older one, still held by requests in flight, keeps its last picker.
 */
import type { EndpointState, LbConfig, LoadBalancer, Picker } from '../upstream/lb/types.js';
import type { ClusterRuntime } from './clusters.js';

/** Everything but the picker, which the cluster builds. */
export type ClusterFields = Omit<ClusterRuntime, 'picker'>;

const NO_HOST: Picker = { pick: () => undefined };

// The fixed fields come from ClusterFields by declaration merging, and are set from it
// in one step: a field added to ClusterRuntime needs no second declaration or copy here.
export interface LiveCluster extends ClusterFields {}

/** A ClusterRuntime whose picker is rebuilt when its outlier detector's ejections change. */
export class LiveCluster implements ClusterRuntime {
  picker: Picker = NO_HOST;
  readonly #lb: LoadBalancer | undefined;
  readonly #config: LbConfig;
  readonly #state: (id: string) => EndpointState;
  /** The detector's generation the picker was built at; -1 before the first build. */
  #generation = -1;

  constructor(f: ClusterFields, lb: LoadBalancer | undefined, config: LbConfig, state: (id: string) => EndpointState) {
    Object.assign(this, f);
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
