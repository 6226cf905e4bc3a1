/**
 * Istio's canonical service and revision of a workload, from its labels, in Istio's
 * precedence (`service.istio.io/canonical-name`, `app.kubernetes.io/name`, `app`, else
 * the workload's name; `service.istio.io/canonical-revision`, `app.kubernetes.io/version`,
 * `version`, else `latest`). Metric labels and endpoint metadata use them.
 */
export interface Canonical {
  readonly app: string;
  readonly version: string;
}

export function canonicalOf(labels: Readonly<Record<string, string>>, workload: string): Canonical {
  return {
    app: labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workload,
    version: labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
  };
}

/** The cluster id Istio reports for a single-cluster mesh. */
export const DEFAULT_CLUSTER_ID = 'Kubernetes';

/** Istio's endpoint metadata `istio.workload`: `name;namespace;canonical-service;canonical-revision;cluster`. */
export function workloadMetadata(name: string, namespace: string, labels: Readonly<Record<string, string>>): string {
  const { app, version } = canonicalOf(labels, name);
  return `${name};${namespace};${app};${version};${DEFAULT_CLUSTER_ID}`;
}
