/**
 * Istio's label values for one HTTP request, from the proxy's own identity and the
 * destination service (istio-compat §3.1): `reporter` is `source` on sidecars' outbound
 * side and on gateways, `destination` on the inbound side; missing peer information is
 * `unknown`. Resolved once per (service, code, flags) and cached by the registry.
 */
import type { ListenContext } from '../http/context.js';
import type { HttpLabels, HttpSeries, TcpSeries } from './metrics.js';
import type { PeerWorkload } from './peer.js';

export function httpLabels(ctx: ListenContext, service: string, code: string, flags: string, protocol: string, peer: PeerWorkload | null): HttpLabels {
  const id = ctx.identity;
  const [serviceName = 'unknown', serviceNamespace = 'unknown'] = service === 'unknown' ? [] : service.split('.');
  const outbound = ctx.mode !== 'inbound';
  // The other side: the picked endpoint's workload (outbound), the caller's (inbound).
  return {
    reporter: outbound ? 'source' : 'destination',
    source_workload: outbound ? id.workload : (peer?.workload ?? 'unknown'),
    source_canonical_service: outbound ? id.app : (peer?.app ?? 'unknown'),
    source_canonical_revision: outbound ? id.version : (peer?.version ?? 'latest'),
    source_workload_namespace: outbound ? id.namespace : (peer?.namespace ?? 'unknown'),
    source_principal: outbound ? id.principal : 'unknown',
    source_app: outbound ? id.app : (peer?.app ?? 'unknown'),
    source_version: outbound ? id.version : (peer?.version ?? 'unknown'),
    source_cluster: outbound ? 'Kubernetes' : (peer?.cluster ?? 'unknown'),
    destination_workload: outbound ? (peer?.workload ?? 'unknown') : id.workload,
    destination_workload_namespace: outbound ? (peer?.namespace ?? serviceNamespace) : id.namespace,
    destination_principal: outbound ? 'unknown' : id.principal,
    destination_app: outbound ? (peer?.app ?? 'unknown') : id.app,
    destination_version: outbound ? (peer?.version ?? 'unknown') : id.version,
    destination_service: service,
    destination_canonical_service: outbound ? (peer?.app ?? serviceName) : id.app,
    destination_canonical_revision: outbound ? (peer?.version ?? 'latest') : id.version,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_cluster: outbound ? (peer?.cluster ?? 'unknown') : 'Kubernetes',
    request_protocol: protocol,
    response_code: code,
    grpc_response_status: '',
    response_flags: flags,
    connection_security_policy: outbound ? 'unknown' : 'none',
  };
}

/**
 * The series of a finished request. Plain HTTP requests without response flags (nearly
 * all of them) are found through `metrics.families` with no allocation; the others by a
 * key string, and cached series are reused either way.
 */
export function httpSeries(ctx: ListenContext, service: string, status: number, flags: string, protocol: string, peer: PeerWorkload | null): HttpSeries {
  if (flags !== '-' || protocol !== 'http') return keyedSeries(ctx, service, status, flags, protocol, peer);
  const families = ctx.metrics.families;
  const peerKey = peer === null ? '' : peer.key;
  let byService = families.get(peerKey);
  if (byService === undefined) families.set(peerKey, (byService = new Map()));
  let family = byService.get(service);
  if (family === undefined) byService.set(service, (family = { byStatus: new Map() }));
  let series = family.byStatus.get(status);
  if (series === undefined) family.byStatus.set(status, (series = keyedSeries(ctx, service, status, flags, protocol, peer)));
  return series;
}

function keyedSeries(ctx: ListenContext, service: string, status: number, flags: string, protocol: string, peer: PeerWorkload | null): HttpSeries {
  const code = String(status);
  return ctx.metrics.http(peer === null ? `${protocol}|${service}|${code}|${flags}` : `${protocol}|${service}|${code}|${flags}|${peer.key}`, () => httpLabels(ctx, service, code, flags, protocol, peer));
}

/** The TCP series for connections to `service` (request_protocol tcp). */
export function tcpSeries(ctx: ListenContext, service: string, flags: string, peer: PeerWorkload | null = null): TcpSeries {
  return ctx.metrics.tcp(peer === null ? `${service}|${flags}` : `${service}|${flags}|${peer.key}`, () => httpLabels(ctx, service, '', flags, 'tcp', peer));
}
