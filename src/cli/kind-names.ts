/**
 * The names `trellis get` and friends accept for a kind, as kubectl accepts them for
 * Istio's CRDs: the short name (`vs`), singular and plural (`virtualservice(s)`), any
 * case, optionally qualified by the API group (`virtualservices.networking.istio.io`).
 */
import { KINDS, type Kind } from '../api/kinds.js';

/** Istio's CRD short names (crd-all.gen.yaml), and Kubernetes' for Service and Namespace. */
const SHORT_NAMES: Readonly<Record<Kind, readonly string[]>> = {
  VirtualService: ['vs'],
  DestinationRule: ['dr'],
  Gateway: ['gw'],
  ServiceEntry: ['se'],
  WorkloadEntry: ['we'],
  Sidecar: [],
  PeerAuthentication: ['pa'],
  AuthorizationPolicy: ['ap'],
  RequestAuthentication: ['ra'],
  Service: ['svc'],
  Namespace: ['ns'],
};

const NAMES: ReadonlyMap<string, Kind> = new Map(
  (Object.keys(KINDS) as Kind[]).flatMap((kind) => {
    const singular = kind.toLowerCase();
    const plural = /[^aeiou]y$/.test(singular) ? `${singular.slice(0, -1)}ies` : `${singular}s`; // gateways, serviceentries
    return [singular, plural, ...SHORT_NAMES[kind]].map((n) => [n, kind] as const);
  }),
);

/** The kind a user's word names, or undefined. */
export function kindOf(word: string): Kind | undefined {
  const lower = word.toLowerCase();
  const dot = lower.indexOf('.');
  if (dot < 0) return NAMES.get(lower);
  const kind = NAMES.get(lower.slice(0, dot));
  return kind !== undefined && KINDS[kind].group === lower.slice(dot + 1) ? kind : undefined;
}

/** For messages: `virtualservice (vs)`, ... */
export function kindList(): string {
  return (Object.keys(KINDS) as Kind[]).map((k) => (SHORT_NAMES[k].length === 0 ? k.toLowerCase() : `${k.toLowerCase()} (${SHORT_NAMES[k].join(', ')})`)).join(', ');
}
