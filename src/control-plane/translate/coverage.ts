/**
 * Which configuration fields translation turns into xDS today, and which not yet. Nothing
 * is dropped silently: a resource that uses a field marked `later` gets a warning in
 * `/debug/configz`, naming the field and the work that brings it.
 */
export const TRANSLATED = 'translated';
export const LATER_RESILIENCE = 'later: resilience (slow start, HTTP/2 keepalive, zone-aware routing, outlier HTTP error codes, retry budget interval)';
export const LATER_SECURITY = 'later: mesh mutual TLS (ISTIO_MUTUAL) and certificates from Kubernetes Secrets (credentialName), which need the mesh CA and SDS';
export const LATER_TLS_CHECKS = 'later: certificate revocation lists and pinning (caCrl, verifyCertificateSpki, verifyCertificateHash)';
export const LATER_MULTI_NETWORK = 'later: multi-network gateways (AUTO_PASSTHROUGH)';
export const LATER_SCOPE = 'later: Sidecar scoping';

export type Coverage = typeof TRANSLATED | typeof LATER_RESILIENCE | typeof LATER_SECURITY | typeof LATER_TLS_CHECKS | typeof LATER_MULTI_NETWORK | typeof LATER_SCOPE;

/** A field translated for some of its values only: the coverage of one value. */
export type ValueCoverage = (value: unknown) => Coverage;

/** TLS modes: files (SIMPLE, MUTUAL, OPTIONAL_MUTUAL) are translated, mesh certificates are not. */
const tlsMode: ValueCoverage = (mode) => (mode === 'ISTIO_MUTUAL' ? LATER_SECURITY : mode === 'AUTO_PASSTHROUGH' ? LATER_MULTI_NETWORK : TRANSLATED);

/** Field paths (in the YAML's spelling, `[]` for list items) and their coverage. */
export const FIELD_COVERAGE: Readonly<Record<string, Coverage | ValueCoverage>> = {
  'VirtualService.spec.hosts': TRANSLATED,
  'VirtualService.spec.gateways': TRANSLATED,
  'VirtualService.spec.exportTo': TRANSLATED,
  'VirtualService.spec.http[].match[].uri': TRANSLATED,
  'VirtualService.spec.http[].match[].scheme': TRANSLATED,
  'VirtualService.spec.http[].match[].method': TRANSLATED,
  'VirtualService.spec.http[].match[].authority': TRANSLATED,
  'VirtualService.spec.http[].match[].headers': TRANSLATED,
  'VirtualService.spec.http[].match[].withoutHeaders': TRANSLATED,
  'VirtualService.spec.http[].match[].queryParams': TRANSLATED,
  'VirtualService.spec.http[].match[].ignoreUriCase': TRANSLATED,
  'VirtualService.spec.http[].match[].port': TRANSLATED,
  'VirtualService.spec.http[].match[].sourceLabels': TRANSLATED,
  'VirtualService.spec.http[].match[].sourceNamespace': TRANSLATED,
  'VirtualService.spec.http[].match[].gateways': TRANSLATED,
  'VirtualService.spec.http[].route[].destination': TRANSLATED,
  'VirtualService.spec.http[].route[].weight': TRANSLATED,
  'VirtualService.spec.http[].route[].headers': TRANSLATED,
  'VirtualService.spec.http[].redirect': TRANSLATED,
  'VirtualService.spec.http[].rewrite': TRANSLATED,
  'VirtualService.spec.http[].directResponse': TRANSLATED,
  'VirtualService.spec.http[].delegate': TRANSLATED,
  'VirtualService.spec.http[].headers': TRANSLATED,
  'VirtualService.spec.http[].corsPolicy': TRANSLATED,
  'VirtualService.spec.http[].timeout': TRANSLATED,
  'VirtualService.spec.http[].retries': TRANSLATED,
  'VirtualService.spec.http[].fault': TRANSLATED,
  'VirtualService.spec.http[].mirror': TRANSLATED,
  'VirtualService.spec.http[].mirrors': TRANSLATED,
  'VirtualService.spec.tcp[]': TRANSLATED,
  'VirtualService.spec.tls[]': TRANSLATED,
  'DestinationRule.spec.subsets[]': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.loadBalancer.simple': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.loadBalancer.consistentHash': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.loadBalancer.localityLbSetting': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.loadBalancer.zoneAwareLbSetting': LATER_RESILIENCE,
  'DestinationRule.spec.trafficPolicy.loadBalancer.warmup': LATER_RESILIENCE,
  'DestinationRule.spec.trafficPolicy.portLevelSettings[]': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.tcp': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.http2MaxRequests': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.maxRetries': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.idleTimeout': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.http2KeepAlive': LATER_RESILIENCE,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.h2UpgradePolicy': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.useClientProtocol': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.connectionPool.http.maxConcurrentStreams': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.outlierDetection': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes': LATER_RESILIENCE,
  'DestinationRule.spec.trafficPolicy.retryBudget': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.retryBudget.budgetInterval': LATER_RESILIENCE,
  'DestinationRule.spec.trafficPolicy.tls': TRANSLATED,
  'DestinationRule.spec.trafficPolicy.tls.mode': tlsMode,
  'DestinationRule.spec.trafficPolicy.tls.credentialName': LATER_SECURITY,
  'DestinationRule.spec.trafficPolicy.tls.caCrl': LATER_TLS_CHECKS,
  'DestinationRule.spec.workloadSelector': TRANSLATED,
  'DestinationRule.spec.exportTo': TRANSLATED,
  'Gateway.spec.selector': TRANSLATED,
  'Gateway.spec.servers[]': TRANSLATED,
  'Gateway.spec.servers[].tls': TRANSLATED,
  'Gateway.spec.servers[].tls.mode': tlsMode,
  'Gateway.spec.servers[].tls.credentialName': LATER_SECURITY,
  'Gateway.spec.servers[].tls.credentialNames': LATER_SECURITY,
  'Gateway.spec.servers[].tls.caCertCredentialName': LATER_SECURITY,
  'Gateway.spec.servers[].tls.caCrl': LATER_TLS_CHECKS,
  'Gateway.spec.servers[].tls.verifyCertificateSpki': LATER_TLS_CHECKS,
  'Gateway.spec.servers[].tls.verifyCertificateHash': LATER_TLS_CHECKS,
  'ServiceEntry.spec': TRANSLATED,
  'WorkloadEntry.spec': TRANSLATED,
  'Sidecar.spec': LATER_SCOPE,
};

type Use = { readonly field: string; readonly path: readonly (string | number)[]; readonly reason: Coverage };

/** A field's coverage, for this value of it; undefined for fields not listed. */
export function coverageOf(field: string, value: unknown): Coverage | undefined {
  const coverage = FIELD_COVERAGE[canonical(field)];
  return typeof coverage === 'function' ? coverage(value) : coverage;
}

/** Subset and port-level policies have the fields of the rule's policy: look them up as such. */
function canonical(field: string): string {
  return field.replace('.subsets[].trafficPolicy', '.trafficPolicy').replace('.trafficPolicy.portLevelSettings[].', '.trafficPolicy.');
}

/** The `later` fields (and values) a resource uses, with a path to each and why, for warnings. */
export function untranslatedUses(kind: string, spec: unknown): Use[] {
  const out: Use[] = [];
  const walk = (value: unknown, field: string, path: (string | number)[]): void => {
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) return; // defaults, not uses
    const coverage = coverageOf(field, value);
    if (coverage !== undefined && coverage !== TRANSLATED) {
      out.push({ field, path, reason: coverage });
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${field}[]`, [...path, i]));
      return;
    }
    if (typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) walk(v, `${field}.${k}`, [...path, k]);
  };
  walk(spec, `${kind}.spec`, ['spec']);
  return out;
}
