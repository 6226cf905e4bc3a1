/**
 * Several registries seen as one: the control plane reads one snapshot holding every
 * source's services and workloads (Istio's aggregate controller,
 * `pilot/pkg/serviceregistry/aggregate`). Sources are given in precedence order: where
 * two declare the same service (hostname, namespace and kind) or the same workload id,
 * the earlier one wins; a ServiceEntry host that is a Kubernetes Service of any source
 * is dropped, as within one source.
 */
import type { RegistrySnapshot } from './model.js';
import { Publisher } from './publisher.js';
import type { Registry } from './registry.js';

export class AggregateRegistry implements Registry {
  readonly #sources: readonly Registry[];
  readonly #publisher: Publisher;
  readonly #unsubscribes: (() => void)[];

  /** Subscribes to every source at once; the sources stay owned (and closed) by the caller. */
  constructor(sources: readonly Registry[]) {
    this.#sources = [...sources];
    const { services, workloads } = this.#merged();
    this.#publisher = new Publisher(services, workloads);
    this.#unsubscribes = this.#sources.map((s) => s.subscribe(() => this.#refresh()));
  }

  snapshot(): RegistrySnapshot {
    return this.#publisher.snapshot();
  }

  subscribe(onChange: () => void): () => void {
    return this.#publisher.subscribe(onChange);
  }

  /** Stops following the sources (it does not close them). */
  close(): void {
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe();
  }

  #refresh(): void {
    const { services, workloads } = this.#merged();
    this.#publisher.publish(services, workloads);
  }

  #merged() {
    const snapshots = this.#sources.map((s) => s.snapshot());
    return { services: snapshots.flatMap((s) => s.services), workloads: snapshots.flatMap((s) => s.workloads) };
  }
}
