/**
 * Checks of VirtualService references: subsets, gateways, destination hosts, and hosts
 * claimed by two VirtualServices for sidecars (Istio does not merge those: one wins, the
 * other's routes are silently dropped — `DuplicatedDomains` in httproute.go).
 */
import type { Finding } from '../finding.js';
import { MESH_GATEWAY, hostMatches } from '../hosts.js';
import type { Resource } from '../resource.js';
import type { Path } from '../schema/path.js';
import { findingAt, type Model } from './model.js';

interface DestinationUse {
  readonly host: string;
  readonly subset?: string;
  readonly path: Path;
}

/** Every destination a VirtualService routes to, with its raw YAML path. */
function destinations(vs: Resource<'VirtualService'>): DestinationUse[] {
  const out: DestinationUse[] = [];
  const add = (d: { host: string; subset?: string }, path: Path): void => {
    out.push(d.subset === undefined ? { host: d.host, path } : { host: d.host, subset: d.subset, path });
  };
  vs.spec.http.forEach((route, i) => route.route.forEach((d, j) => add(d.destination, ['spec', 'http', i, 'route', j, 'destination'])));
  vs.spec.tls.forEach((route, i) => route.route.forEach((d, j) => add(d.destination, ['spec', 'tls', i, 'route', j, 'destination'])));
  vs.spec.tcp.forEach((route, i) => route.route.forEach((d, j) => add(d.destination, ['spec', 'tcp', i, 'route', j, 'destination'])));
  return out;
}

/** Hosts declared by Services (`name.namespace.svc.<domain>`) and ServiceEntries. */
export function declaredHosts(model: Model, domain: string): string[] {
  const hosts = model.of('Service').map((s) => `${s.metadata.name}.${s.metadata.namespace}.svc.${domain}`);
  for (const se of model.of('ServiceEntry')) hosts.push(...se.spec.hosts);
  return hosts;
}

export function checkSubsets(model: Model): Finding[] {
  const out: Finding[] = [];
  const rules = model.of('DestinationRule');
  for (const vs of model.of('VirtualService')) {
    for (const d of destinations(vs)) {
      if (d.subset === undefined) continue;
      const defined = rules.some((dr) => hostMatches(dr.spec.host, d.host) && dr.spec.subsets.some((s) => s.name === d.subset));
      if (defined) continue;
      out.push(findingAt(vs, 'TRELLIS_ANALYZE_SUBSET_NOT_FOUND', [...d.path, 'subset'],
        `subset "${d.subset}" of host ${d.host} is defined by no DestinationRule; requests routed here fail with 503 (NC)`));
    }
  }
  return out;
}

export function checkGateways(model: Model): Finding[] {
  const out: Finding[] = [];
  for (const vs of model.of('VirtualService')) {
    const check = (ref: string, path: Path): void => {
      if (ref === MESH_GATEWAY || model.has(`Gateway/${ref}`)) return;
      out.push(findingAt(vs, 'TRELLIS_ANALYZE_GATEWAY_NOT_FOUND', path, `gateway "${ref}" does not exist`));
    };
    vs.spec.gateways.forEach((g, i) => check(g, ['spec', 'gateways', i]));
    vs.spec.http.forEach((route, i) => route.match.forEach((m, j) => m.gateways?.forEach((g, k) => check(g, ['spec', 'http', i, 'match', j, 'gateways', k]))));
  }
  return out;
}

export function checkHosts(model: Model, domain: string): Finding[] {
  const hosts = declaredHosts(model, domain);
  const out: Finding[] = [];
  for (const vs of model.of('VirtualService')) {
    for (const d of destinations(vs)) {
      if (hosts.some((h) => hostMatches(h, d.host))) continue;
      out.push(findingAt(vs, 'TRELLIS_ANALYZE_HOST_NOT_FOUND', [...d.path, 'host'], `host ${d.host} is declared by no Service or ServiceEntry`));
    }
  }
  return out;
}

export function checkConflictingVirtualServices(model: Model): Finding[] {
  const owners = new Map<string, Set<string>>();
  const meshBound = model.of('VirtualService').filter((vs) => vs.spec.gateways.includes(MESH_GATEWAY));
  for (const vs of meshBound) {
    for (const host of vs.spec.hosts) {
      const set = owners.get(host) ?? new Set<string>();
      set.add(`${vs.metadata.namespace}/${vs.metadata.name}`);
      owners.set(host, set);
    }
  }
  const out: Finding[] = [];
  for (const vs of meshBound) {
    const self = `${vs.metadata.namespace}/${vs.metadata.name}`;
    vs.spec.hosts.forEach((host, i) => {
      const others = [...(owners.get(host) ?? [])].filter((o) => o !== self);
      if (others.length === 0) return;
      out.push(findingAt(vs, 'TRELLIS_ANALYZE_CONFLICTING_VIRTUAL_SERVICES', ['spec', 'hosts', i],
        `host ${host} is also defined by VirtualService ${others.join(', ')} for the mesh gateway; sidecars use only one of them — merge them into one VirtualService`));
    });
  }
  return out;
}
