/**
 * Host and gateway-name resolution, done once when configuration is read.
 *
 * Istio resolves a short host against the namespace of the rule that names it, not the
 * namespace of the service: `reviews` in a VirtualService of `default` is
 * `reviews.default.svc.cluster.local` (`ResolveShortnameToFQDN`, pilot/pkg/model). Only
 * names without a dot are expanded; `*` and IP addresses stay as written.
 */
import { isIP } from './common.js';

export const MESH_GATEWAY = 'mesh';

export function resolveHost(host: string, namespace: string, domain: string): string {
  if (host === '*' || host.includes('.') || isIP(host)) return host;
  return `${host}.${namespace}.svc.${domain}`;
}

/**
 * A gateway reference as `namespace/name`; `mesh` stays `mesh`. A bare name is in the
 * rule's namespace; the legacy FQDN form `name.namespace.svc.cluster.local` is accepted
 * as Istio still does.
 */
export function resolveGatewayRef(ref: string, namespace: string): string {
  if (ref === MESH_GATEWAY || ref.includes('/')) return ref;
  const dot = ref.indexOf('.');
  if (dot < 0) return `${namespace}/${ref}`;
  const [name, ns] = ref.split('.') as [string, string];
  return `${ns}/${name}`;
}

/** Istio host matching: `*.example.com` covers `a.example.com`, `*` covers all. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) || (host.startsWith('*.') && host.endsWith(pattern.slice(1)));
  return pattern === host;
}
