/**
 * The kinds Trellis reads, the API versions that serve them, and their spec schemas.
 * Istio serves every networking kind at v1, v1beta1 and v1alpha3 with one schema, and the
 * security kinds at v1 and v1beta1 (crd-all.gen.yaml); so does Trellis.
 */
import { namespaceSpec } from './kubernetes/namespace.js';
import { serviceSpec } from './kubernetes/service.js';
import { destinationRuleSpec } from './networking/destination-rule.js';
import { gatewaySpec } from './networking/gateway.js';
import { serviceEntrySpec } from './networking/service-entry.js';
import { sidecarSpec } from './networking/sidecar.js';
import { virtualServiceSpec } from './networking/virtual-service.js';
import { workloadEntrySpec } from './networking/workload-entry.js';
import type { Output, Schema } from './schema/schema.js';
import { authorizationPolicySpec } from './security/authorization-policy.js';
import { peerAuthenticationSpec } from './security/peer-authentication.js';
import { requestAuthenticationSpec } from './security/request-authentication.js';

export const NETWORKING_GROUP = 'networking.istio.io';
export const SECURITY_GROUP = 'security.istio.io';
const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
const SECURITY_VERSIONS = ['v1', 'v1beta1'] as const;

interface KindInfo {
  readonly group: string;
  readonly versions: readonly string[];
  readonly spec: Schema<unknown>;
  /** Istio requires a spec for its kinds; Kubernetes Namespace may omit it. */
  readonly specRequired: boolean;
  /** Gateway names are DNS-1123 labels in Istio; Services and Namespaces too in Kubernetes. */
  readonly nameIsLabel: boolean;
  readonly namespaced: boolean;
}

function kind<S extends Schema<unknown>>(group: string, versions: readonly string[], spec: S, extra: Partial<Pick<KindInfo, 'specRequired' | 'nameIsLabel' | 'namespaced'>> = {}) {
  return { group, versions, spec, specRequired: true, nameIsLabel: false, namespaced: true, ...extra };
}

export const KINDS = {
  VirtualService: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, virtualServiceSpec),
  DestinationRule: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, destinationRuleSpec),
  Gateway: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, gatewaySpec, { nameIsLabel: true }),
  ServiceEntry: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, serviceEntrySpec),
  WorkloadEntry: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, workloadEntrySpec),
  Sidecar: kind(NETWORKING_GROUP, NETWORKING_VERSIONS, sidecarSpec),
  PeerAuthentication: kind(SECURITY_GROUP, SECURITY_VERSIONS, peerAuthenticationSpec),
  AuthorizationPolicy: kind(SECURITY_GROUP, SECURITY_VERSIONS, authorizationPolicySpec),
  RequestAuthentication: kind(SECURITY_GROUP, SECURITY_VERSIONS, requestAuthenticationSpec),
  Service: kind('', ['v1'], serviceSpec, { nameIsLabel: true }),
  Namespace: kind('', ['v1'], namespaceSpec, { specRequired: false, nameIsLabel: true, namespaced: false }),
} as const satisfies Record<string, KindInfo>;

export type Kind = keyof typeof KINDS;
export type SpecOf<K extends Kind> = Output<(typeof KINDS)[K]['spec']>;

export function isKind(k: string): k is Kind {
  return Object.hasOwn(KINDS, k);
}

export function apiVersionsOf(k: Kind): readonly string[] {
  const info: KindInfo = KINDS[k];
  return info.versions.map((v) => (info.group === '' ? v : `${info.group}/${v}`));
}

/** Istio and Gateway API kinds Trellis does not implement yet: skipped with a warning. */
export const UNSUPPORTED_GROUPS: ReadonlySet<string> = new Set([
  NETWORKING_GROUP,
  SECURITY_GROUP,
  'telemetry.istio.io',
  'extensions.istio.io',
  'gateway.networking.k8s.io',
]);

/** Kubernetes kinds whose pod template declares workloads (used by `analyze` for selectors). */
export const WORKLOAD_KINDS: ReadonlySet<string> = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'ReplicationController',
  'Job',
  'CronJob',
  'Pod',
]);
