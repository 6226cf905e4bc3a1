/**
 * The DestinationRule traffic policy that applies to one cluster: the rule's policy,
 * overridden field by field by a subset's policy (Istio `MergeTrafficPolicy`), then the
 * port-level settings for the port, which replace the four policy groups wholesale —
 * nothing is inherited from the destination level (istio-compat 1.2). `retryBudget` has no
 * port-level form: it stays the rule's (or the subset's), as in Istio's MergeTrafficPolicy.
 */
import type { Resource } from '../../api/resource.js';
import type { TrafficPolicy } from '../../api/networking/destination-rule.js';

export type PortPolicy = Pick<TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls' | 'retryBudget'>;

export function effectivePolicy(dr: Resource<'DestinationRule'> | undefined, subset: string, port: number): PortPolicy | undefined {
  if (dr === undefined) return undefined;
  let policy: TrafficPolicy | undefined = dr.spec.trafficPolicy;
  if (subset !== '') {
    const sub = dr.spec.subsets.find((s) => s.name === subset)?.trafficPolicy;
    if (sub !== undefined) policy = { ...policy, ...definedOnly(sub) };
  }
  if (policy === undefined) return undefined;
  const portLevel = policy.portLevelSettings?.find((p) => p.port.number === port);
  if (portLevel !== undefined) {
    const { port: _port, ...groups } = portLevel;
    return { ...groups, retryBudget: policy.retryBudget };
  }
  const { loadBalancer, connectionPool, outlierDetection, tls, retryBudget } = policy;
  return { loadBalancer, connectionPool, outlierDetection, tls, retryBudget };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
