/** Runs the Registry contract against every source. */
import { AggregateRegistry } from '../../src/registry/aggregate.js';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import { RegistrationRegistry } from '../../src/registry/registration-source.js';
import type { AnyResource } from '../../src/api/resource.js';
import { registryContract, type RegistryHarness } from './contract.js';
import { FakeClock } from './fake-clock.js';
import { workloadEntry } from './fixtures.js';

/** Workloads as WorkloadEntry resources: the whole set is passed to `update` on each change. */
function configHarness(): RegistryHarness & { readonly registry: ConfigRegistry } {
  const registry = new ConfigRegistry();
  const entries = new Map<string, AnyResource>();
  return {
    registry,
    addWorkload(spec) {
      const id = `workload-entry/${spec.namespace}/${spec.name}`;
      entries.set(id, workloadEntry(spec));
      registry.update([...entries.values()]);
      return id;
    },
    removeWorkload(id) {
      entries.delete(id);
      registry.update([...entries.values()]);
    },
    close() {},
  };
}

/** Workloads as run-time registrations, on a fake clock that never advances here. */
function registrationHarness(): RegistryHarness & { readonly registry: RegistrationRegistry } {
  let n = 0;
  const registry = new RegistrationRegistry({ clock: new FakeClock(), newId: () => `r${++n}` });
  const byWorkload = new Map<string, string>();
  return {
    registry,
    addWorkload(spec) {
      const result = registry.register({ ...spec, serviceAccount: spec.serviceAccount ?? 'default' });
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      byWorkload.set(result.workloadId, result.id);
      return result.workloadId;
    },
    removeWorkload(id) {
      registry.deregister(byWorkload.get(id) ?? '');
    },
    close: () => registry.close(),
  };
}

/** One of each source behind an aggregate; workloads go to each source in turn. */
function aggregateHarness(): RegistryHarness {
  const sources = [configHarness(), registrationHarness()] as const;
  const registry = new AggregateRegistry(sources.map((s) => s.registry));
  let turn = 0;
  const owner = new Map<string, RegistryHarness>();
  return {
    registry,
    addWorkload(spec) {
      const source = sources[turn++ % sources.length] as RegistryHarness;
      const id = source.addWorkload(spec);
      owner.set(id, source);
      return id;
    },
    removeWorkload(id) {
      owner.get(id)?.removeWorkload(id);
    },
    close() {
      registry.close();
      for (const s of sources) s.close();
    },
  };
}

registryContract('ConfigRegistry', configHarness);
registryContract('RegistrationRegistry', registrationHarness);
registryContract('AggregateRegistry', aggregateHarness);
