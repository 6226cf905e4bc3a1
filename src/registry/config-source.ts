/**
 * The registry of declared configuration: Kubernetes Services, ServiceEntries and
 * WorkloadEntries, from YAML files (the local mesh) or from the Kubernetes API. The
 * owner (the config store) calls `update` with the whole current set whenever it changes;
 * the registry works out whether the services or workloads changed.
 */
import { DEFAULT_TRUST_DOMAIN } from '../core/spiffe.js';
import { type AnyResource, isKindOf } from '../api/resource.js';
import { serviceFromKubernetes } from './convert/kubernetes-service.js';
import { fromServiceEntry } from './convert/service-entry.js';
import { workloadFromEntry } from './convert/workload-entry.js';
import type { RegistrySnapshot, Service, Workload } from './model.js';
import { Publisher } from './publisher.js';
import type { Registry } from './registry.js';

export interface ConfigRegistryOptions {
  /** The cluster DNS domain of Kubernetes Service hostnames. Default `cluster.local`. */
  readonly domain?: string;
}

export class ConfigRegistry implements Registry {
  readonly #domain: string;
  readonly #publisher = new Publisher();

  constructor(options: ConfigRegistryOptions = {}) {
    this.#domain = options.domain ?? DEFAULT_TRUST_DOMAIN;
  }

  snapshot(): RegistrySnapshot {
    return this.#publisher.snapshot();
  }

  subscribe(onChange: () => void): () => void {
    return this.#publisher.subscribe(onChange);
  }

  /**
   * Replaces the declared configuration with `resources` (every kind may be passed; those
   * that declare no service or workload are ignored). Content equal to the current one
   * makes no new snapshot and notifies nobody. Returns whether something changed. Throws
   * only what a subscriber throws.
   */
  update(resources: readonly AnyResource[]): boolean {
    const services: Service[] = [];
    const workloads: Workload[] = [];
    // Kubernetes Services first: they take precedence over ServiceEntries of the same host.
    for (const r of resources) if (isKindOf(r, 'Service')) services.push(serviceFromKubernetes(r, this.#domain));
    for (const r of resources) {
      if (isKindOf(r, 'ServiceEntry')) {
        const parts = fromServiceEntry(r);
        services.push(...parts.services);
        workloads.push(...parts.workloads);
      } else if (isKindOf(r, 'WorkloadEntry')) {
        workloads.push(workloadFromEntry(r));
      }
    }
    return this.#publisher.publish(services, workloads);
  }
}
