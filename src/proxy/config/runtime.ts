/**
 * The proxy's compiled configuration: listeners, route tables and clusters built from
 * what the xDS client accepted, swapped as a whole object on every change so a request
 * reads one consistent `current` (STYLE 14). Resources are compiled while they are being
 * validated, so a resource that cannot be compiled is NACKed and the previous one keeps
 * serving; compiled forms are cached by the decoded object.
 *
 * Certificate files of the live TLS contexts are watched (tls/rotation.ts): a listener
 * chain's context swaps its certificate in place; a cluster whose material rotated is
 * rebuilt by publishing again from the same resources, as a configuration change would.
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
import { CertificateRotation, TLS_OWNERS, type TlsTarget } from '../tls/rotation.js';
import { clusterTlsOf, upstreamTlsOf } from '../tls/cluster-tls.js';
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
  /** Debounce of certificate file changes (tls/file-watch.ts). */
  readonly certDebounceMs?: number;
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
  readonly #rotation: CertificateRotation;
  /** What the last update read, to publish again after a cluster's certificates rotated. */
  #source: ConfigSource | undefined;
  #current: RuntimeSnapshot = { version: 0, listeners: new Map(), routes: new Map(), clusters: new Map() };

  constructor(lbs: LoadBalancerRegistry, log: Logger, options: RuntimeOptions = {}) {
    this.upstream = new UpstreamState(new ResilienceRegistry(options.clock, options.random));
    this.#lbs = lbs;
    this.#log = log;
    this.#rotation = new CertificateRotation(log, (rotated) => this.#rotated(rotated), options.certDebounceMs);
  }

  /** The live TLS contexts (listener chains, clusters), for `/certs`. */
  get tlsContexts(): readonly TlsTarget[] {
    return this.#rotation.targets;
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
    this.#source = source;
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
      // A cluster whose certificates rotated since its build is built again with them.
      const rt = cached !== undefined && cached.cla === cla && cached.runtime.tls === upstreamTlsOf(c) ? cached.runtime : buildCluster(c, cla, this.#lbs, this.upstream);
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
    this.#rotation.track(tlsTargets(listeners, source.resources(TYPE_URLS.CLUSTER) as ReadonlyMap<string, Cluster__Output>));
    this.#log.debug('configuration updated', { version: this.#current.version, listeners: listeners.size, routes: routes.size, clusters: clusters.size });
    for (const fn of [...this.#subscribers]) fn(this.#current);
  }

  close(): void {
    this.#rotation.close();
    this.upstream.close();
  }

  /** Listener chains took their new certificates in place; clusters need a new build. */
  #rotated(rotated: readonly TlsTarget[]): void {
    if (this.#source !== undefined && rotated.some((t) => t.owner === TLS_OWNERS.cluster)) this.update(this.#source);
  }
}

/** The TLS contexts of `listeners` (per filter chain) and `clusters`. */
function tlsTargets(listeners: ReadonlyMap<string, ListenerRuntime>, clusters: ReadonlyMap<string, Cluster__Output>): TlsTarget[] {
  const out: TlsTarget[] = [];
  for (const l of listeners.values()) {
    l.chains.forEach((c, i) => {
      if (c.action.tls !== null) out.push({ name: `listener ${l.name} chain ${c.action.name || `#${i}`}`, owner: TLS_OWNERS.listener, tls: c.action.tls });
    });
    if (l.defaultChain?.tls != null) out.push({ name: `listener ${l.name} chain ${l.defaultChain.name || 'default'}`, owner: TLS_OWNERS.listener, tls: l.defaultChain.tls });
  }
  for (const [name, c] of clusters) {
    const tls = clusterTlsOf(c);
    if (tls !== null) out.push({ name: `cluster ${name}`, owner: TLS_OWNERS.cluster, tls });
  }
  return out;
}
