/**
 * SPIFFE workload identities as Istio forms them (`pkg/spiffe/spiffe.go`):
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. AuthorizationPolicy
 * principals are the same without the scheme: `cluster.local/ns/default/sa/productpage`.
 */
import { TrellisError } from './errors.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
const SCHEME = 'spiffe://';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export function spiffeUri(id: SpiffeId): string {
  return `${SCHEME}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The principal as AuthorizationPolicy writes it: the URI without `spiffe://`. */
export function spiffePrincipal(id: SpiffeId): string {
  return `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses a URI (or a scheme-less principal); undefined when it is not a workload identity. */
export function parseSpiffeId(text: string): SpiffeId | undefined {
  const rest = text.startsWith(SCHEME) ? text.slice(SCHEME.length) : text;
  const parts = rest.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  if (trustDomain === '' || namespace === '' || serviceAccount === '') return undefined;
  return { trustDomain, namespace, serviceAccount };
}

/** Like parseSpiffeId, for setup paths where a bad identity is a configuration error. */
export function requireSpiffeId(text: string): SpiffeId {
  const id = parseSpiffeId(text);
  if (id === undefined) {
    throw new TrellisError(
      'TRELLIS_CORE_INVALID_SPIFFE_ID',
      `"${text}" is not a SPIFFE workload identity; expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
    );
  }
  return id;
}
