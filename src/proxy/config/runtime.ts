/**
 * The proxy's compiled configuration: listeners, route tables and clusters built from
 * what the xDS client accepted, swapped as a whole object on every change so a request
 * reads one consistent `current` (STYLE 14). Resources are compiled while they are being
 * validated, so a resource that cannot be compiled is NACKed and the previous one keeps
 * serving; compiled forms are cached by the decoded object.
 */
import type { Logger } from '../../core/log.js';
import type { Cluster__Output } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment__Output } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { Listener__Output } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { RouteConfiguration__Output } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { RouteTable } from '../routing/route-table.js';
import type { LoadBalancerRegistry } from '../upstream/lb/registry.js';
import type { Clock } from '../resilience/clock.js';
import { ResilienceRegistry } from '../resilience/cluster-resilience.js';
import { activateCluster, buildCluster, clusterProblem, type ClusterRuntime, poolKey, UpstreamState } from './clusters.js';
import { buildListener, type ListenerRuntime } from './listeners.js';

export interface RuntimeSnapshot {
  readonly version: number;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, ClusterRuntime>;
}

export interface ConfigSource {
  resources(typeUrl: string): ReadonlyMap<string, unknown>;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Test seams: time and randomness for outlier detection and retry budgets. */
export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly random?: () => number;
}

export class RuntimeConfig {
  readonly upstream: UpstreamState;
  readonly #lbs: LoadBalancerRegistry;
  readonly #log: Logger;
  readonly #listeners = new WeakMap<object, ListenerRuntime>();
  readonly #routes = new WeakMap<object, RouteTable>();
  /** A cluster's runtime, reused while neither the cluster nor its endpoints changed. */
  readonly #clusters = new WeakMap<object, { cla: unknown; runtime: ClusterRuntime }>();
  readonly #subscribers = new Set<(s: RuntimeSnapshot) => void>();
  #current: RuntimeSnapshot = { version: 0, listeners: new Map(), routes: new Map(), clusters: new Map() };

  constructor(lbs: LoadBalancerRegistry, log: Logger, options: RuntimeOptions = {}) {
    this.upstream = new UpstreamState(new ResilienceRegistry(options.clock, options.random));
    this.#lbs = lbs;
    this.#log = log;
  }

  get current(): RuntimeSnapshot {
    return this.#current;
  }

  onChange(fn: (s: RuntimeSnapshot) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Validators for the xDS client: compile or say why not (the client NACKs). */
  validators(): Record<string, (resource: unknown, name: string) => string | undefined> {
    return {
      [TYPE_URLS.LISTENER]: (r) => {
        try {
          this.#listeners.set(r as object, buildListener(r as Listener__Output));
          return undefined;
        } catch (err) {
          return errorMessage(err);
        }
      },
      [TYPE_URLS.ROUTE]: (r) => {
        try {
          this.#routes.set(r as object, new RouteTable(r as RouteConfiguration__Output));
          return undefined;
        } catch (err) {
          return errorMessage(err);
        }
      },
      [TYPE_URLS.CLUSTER]: (r) => clusterProblem(r as Cluster__Output, this.#lbs),
    };
  }

  /** Rebuilds from the accepted resources and publishes a new snapshot. */
  update(source: ConfigSource): void {
    const listeners = new Map<string, ListenerRuntime>();
    for (const [name, l] of source.resources(TYPE_URLS.LISTENER)) {
      const compiled = this.#listeners.get(l as object) ?? buildListener(l as Listener__Output);
      listeners.set(name, compiled);
    }
    const routes = new Map<string, RouteTable>();
    for (const [name, r] of source.resources(TYPE_URLS.ROUTE)) {
      routes.set(name, this.#routes.get(r as object) ?? new RouteTable(r as RouteConfiguration__Output));
    }
    const assignments = source.resources(TYPE_URLS.ENDPOINT) as ReadonlyMap<string, ClusterLoadAssignment__Output>;
    const clusters = new Map<string, ClusterRuntime>();
    const live = new Set<string>();
    for (const [name, c] of source.resources(TYPE_URLS.CLUSTER) as ReadonlyMap<string, Cluster__Output>) {
      const edsName = c.eds_cluster_config?.service_name || c.name;
      const cla = assignments.get(edsName);
      const cached = this.#clusters.get(c);
      const rt = cached !== undefined && cached.cla === cla ? cached.runtime : buildCluster(c, cla, this.#lbs, this.upstream);
      this.#clusters.set(c, { cla, runtime: rt });
      clusters.set(name, rt);
      for (const e of rt.endpoints) live.add(poolKey(e.id, rt.tls));
    }
    // Outlier detection rebuilds the pickers of the clusters published now; the state of
    // clusters that are gone (and their detectors' timers) goes with them.
    for (const rt of clusters.values()) activateCluster(rt);
    this.upstream.resilience.retain(new Set([...clusters.values()].map((rt) => rt.name)));
    this.upstream.prune(live);
    this.#current = { version: this.#current.version + 1, listeners, routes, clusters };
    this.#log.debug('configuration updated', { version: this.#current.version, listeners: listeners.size, routes: routes.size, clusters: clusters.size });
    for (const fn of [...this.#subscribers]) fn(this.#current);
  }

  close(): void {
    this.upstream.close();
  }
}
