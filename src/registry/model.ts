/**
 * The registry's domain: services (what clients address) and workloads (what serves
 * them), as the translator reads them. Every object here is readonly, and the objects in
 * a snapshot are frozen: a snapshot is shared by every reader and never changes (a change
 * makes a new one), like go-control-plane's versioned snapshots.
 *
 * The shapes follow Istio's service model (`pilot/pkg/model/service.go`) reduced to what
 * Trellis translates: a Service is one host with ports; a Workload is one address with a
 * named-port map (a WorkloadEntry, a ServiceEntry endpoint, or a run-time registration).
 * Which workloads serve which service port is computed by `endpointsOf` (endpoints.ts).
 */
import type { IstioProtocol } from '../api/kubernetes/service.js';
import type { Labels } from '../api/common.js';

/** Where a Service was declared. */
export const SERVICE_SOURCES = { kubernetes: 'kubernetes', serviceEntry: 'service-entry' } as const;
export type ServiceSource = (typeof SERVICE_SOURCES)[keyof typeof SERVICE_SOURCES];

/**
 * How a client finds the addresses of a service, Istio's `Resolution`:
 * `static` = the registry's endpoints (Istio ClientSideLB, EDS), `dns` / `dns-round-robin`
 * = resolve the endpoint (or host) names, `passthrough` = the original destination
 * (ServiceEntry `NONE`, headless Services), `dynamic-dns` = resolve the Host/SNI per request.
 */
export const RESOLUTIONS = {
  static: 'static',
  dns: 'dns',
  dnsRoundRobin: 'dns-round-robin',
  passthrough: 'passthrough',
  dynamicDns: 'dynamic-dns',
} as const;
export type Resolution = (typeof RESOLUTIONS)[keyof typeof RESOLUTIONS];

/** Whether the service is part of the mesh (mTLS, telemetry on both sides) or outside it. */
export const LOCATIONS = { meshInternal: 'mesh-internal', meshExternal: 'mesh-external' } as const;
export type Location = (typeof LOCATIONS)[keyof typeof LOCATIONS];

/** Where a Workload was declared. */
export const WORKLOAD_SOURCES = {
  workloadEntry: 'workload-entry',
  serviceEntry: 'service-entry',
  registration: 'registration',
} as const;
export type WorkloadSource = (typeof WORKLOAD_SOURCES)[keyof typeof WORKLOAD_SOURCES];

/** A port's protocol as Istio reads it; `auto` is sniffed at connection time. */
export type PortProtocol = IstioProtocol | 'auto';

export interface ServicePort {
  /** The port name: Kubernetes Service port name ('' when the only port is unnamed), SE port name. */
  readonly name: string;
  readonly port: number;
  /**
   * Where the workload listens: a number, a workload port name (Kubernetes only), or
   * undefined (ServiceEntry port without `targetPort`: the endpoint's port map, else `port`).
   */
  readonly targetPort: number | string | undefined;
  readonly protocol: PortProtocol;
}

export interface Service {
  /** FQDN `<name>.<ns>.svc.<domain>` for a Kubernetes Service; the host as written for a ServiceEntry. */
  readonly hostname: string;
  /** The Kubernetes Service name, or the name of the ServiceEntry that declares the host. */
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  readonly source: ServiceSource;
  /**
   * The Service selector, or the ServiceEntry `workloadSelector`. Absent when the service
   * selects no workloads (a Service without selector, a ServiceEntry with `endpoints`).
   */
  readonly selector?: Labels;
  readonly resolution: Resolution;
  readonly location: Location;
  /** Cluster IP, or ServiceEntry `addresses` (IPs or CIDRs). */
  readonly addresses: readonly string[];
  /** Namespaces that see this service: `*` (all, Istio's default), `.`, `~` or names. */
  readonly exportTo: readonly string[];
}

/** Istio's `region/zone/subzone`; missing parts are ''. */
export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export interface Workload {
  /**
   * Unique and stable across snapshots: `workload-entry/<ns>/<name>`,
   * `service-entry/<ns>/<name>/<index>` or `registration/<id>`.
   */
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  /** IP address (a host name for DNS-resolved ServiceEntry endpoints); '' when unknown. */
  readonly address: string;
  /** WorkloadEntry `ports`: service port name → the port this workload listens on. */
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: Labels;
  /** '' when not given (Istio gives such a workload no identity). */
  readonly serviceAccount: string;
  readonly locality: Locality;
  /** Load-balancing weight, at least 1 (Istio treats 0 as unset, which Envoy reads as 1). */
  readonly weight: number;
  readonly network: string;
  readonly healthy: boolean;
  readonly source: WorkloadSource;
  /**
   * For `service-entry` workloads: the name of the ServiceEntry (in the workload's
   * namespace) that lists it. Such a workload serves only that ServiceEntry's hosts; no
   * other service's selector takes it (Istio keeps SE endpoints per ServiceEntry).
   */
  readonly owner?: string;
}

/** One workload serving one service port: what the translator turns into an LbEndpoint. */
export interface Endpoint {
  readonly workloadId: string;
  /** The workload's name and namespace (for Istio's endpoint metadata). */
  readonly workloadName: string;
  readonly namespace: string;
  readonly address: string;
  /** The port to dial on `address`. */
  readonly port: number;
  readonly labels: Labels;
  readonly serviceAccount: string;
  readonly locality: Locality;
  readonly weight: number;
  /** Unhealthy endpoints are listed; the translator decides (Envoy health status). */
  readonly healthy: boolean;
}

/**
 * A consistent view of one registry at one time. `version` increases with every change;
 * services are ordered by hostname (Kubernetes before ServiceEntry), workloads by id.
 */
export interface RegistrySnapshot {
  readonly version: number;
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
}

/** Parses `region/zone/subzone` (any suffix may be missing). */
export function parseLocality(text: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (text ?? '').split('/');
  return { region, zone, subzone };
}

/** `region/zone/subzone` without trailing empty parts, '' when unknown. */
export function formatLocality(l: Locality): string {
  return [l.region, l.zone, l.subzone].join('/').replace(/\/+$/, '');
}
