/**
 * The Kubernetes core/v1 Service spec, as the mesh reads it: every field of the API is
 * accepted (so real manifests load), the ones the mesh uses are validated after
 * Kubernetes' `ValidateService` and kept in the domain form. Also how Istio derives a
 * port's protocol from its name or appProtocol (`pkg/config/kube/conversion.go`).
 */
import { cidr, dnsLabel, isDns1123Subdomain, isIP, labels, type Labels } from '../common.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, isPlainObject, object, required, withDefault, wrongType } from '../schema/schema.js';
import { boolean, integer, oneOf, port, string } from '../schema/scalars.js';

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

export const SERVICE_PORT_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
export type ServicePortProtocol = (typeof SERVICE_PORT_PROTOCOLS)[number];

export interface ServicePort {
  readonly name?: string;
  readonly protocol: ServicePortProtocol;
  readonly appProtocol?: string;
  readonly port: number;
  /** The pod port: a number, or the name of a container port. Defaults to `port`. */
  readonly targetPort: number | string;
  readonly nodePort?: number;
}

export interface ServiceSpec {
  readonly ports: readonly ServicePort[];
  /** Pod labels; empty when absent (a Service without selector has manual endpoints). */
  readonly selector: Labels;
  readonly type: ServiceType;
  /** `None` for a headless service. */
  readonly clusterIP?: string;
  readonly externalName?: string;
}

// Kubernetes IANA_SVC_NAME: at most 15 characters, lower case letters, digits and
// non-adjacent inner "-", with at least one letter.
function isIanaServiceName(s: string): boolean {
  return s.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

/**
 * IntOrString. Kubernetes defaults `0` and `""` to the service port; they are kept here
 * and resolved with the rest of the port.
 */
const targetPort: Schema<number | string> = {
  expected: 'a port number or a port name',
  parse(value, path, ctx) {
    if (value === 0 || value === '') return value;
    if (typeof value === 'number') return port.parse(value, path, ctx);
    if (typeof value !== 'string') return wrongType(ctx, path, this.expected, value);
    if (isIanaServiceName(value)) return value;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${value}" is not a port name (at most 15 lower case letters, digits and "-", with at least one letter)`);
    return undefined;
  },
};

const servicePort: Schema<ServicePort> = object(
  {
    name: dnsLabel('port name'),
    protocol: withDefault(oneOf(SERVICE_PORT_PROTOCOLS), 'TCP'),
    appProtocol: string(),
    port: required(port),
    targetPort,
    // 0 asks Kubernetes to allocate one.
    nodePort: integer({ min: 0, max: 65535 }),
  },
  {
    expected: 'a service port object',
    map: ({ targetPort: target, ...v }) => ({ ...v, targetPort: target === undefined || target === 0 || target === '' ? v.port : target }),
  },
);

const clusterIP: Schema<string> = string({
  check: (v, path, ctx) => {
    if (v === '' || v === 'None' || isIP(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an IP address, "None" or ""`);
    return false;
  },
});

const ipAddress: Schema<string> = string({
  check: (v, path, ctx) => {
    if (isIP(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an IP address`);
    return false;
  },
});

const externalName: Schema<string> = string({
  check: (v, path, ctx) => {
    const name = v.endsWith('.') ? v.slice(0, -1) : v;
    if (isDns1123Subdomain(name)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not a DNS name (lower case RFC 1123)`);
    return false;
  },
});

/** Any object, unchecked: fields the mesh does not read. */
const anyObject: Schema<Readonly<Record<string, unknown>>> = {
  expected: 'an object',
  parse(value, path, ctx) {
    return isPlainObject(value) ? value : wrongType(ctx, path, this.expected, value);
  },
};

function portName(raw: unknown): string | undefined {
  const n = (raw as { name?: unknown } | null)?.name;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

interface RawServiceSpec {
  readonly ports?: readonly ServicePort[];
  readonly type: ServiceType;
  readonly clusterIP?: string;
  readonly externalName?: string;
}

/** Kubernetes' cross-field rules on ports and type. */
function checkService(v: RawServiceSpec, path: Path, ctx: ParseContext): boolean {
  let ok = true;
  const ports = v.ports ?? [];
  if (ports.length === 0 && v.type !== 'ExternalName' && v.clusterIP !== 'None') {
    ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'ports'], 'a service needs at least one port, unless it is headless (clusterIP: None) or of type ExternalName');
    ok = false;
  }
  const seen = new Map<string, number>();
  ports.forEach((p, i) => {
    if (ports.length > 1 && p.name === undefined) {
      ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'ports', i, 'name'], 'port name is required when a service has more than one port');
      ok = false;
    }
    const key = `${p.port}/${p.protocol}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else {
      ctx.report('TRELLIS_CONFIG_DUPLICATE', [...path, 'ports', i, 'port'], `duplicate port ${key} (first at index ${first})`);
      ok = false;
    }
  });
  if (v.type === 'ExternalName' && (v.externalName === undefined || v.externalName === '')) {
    ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'externalName'], 'externalName is required when type is ExternalName');
    ok = false;
  }
  return ok;
}

export const serviceSpec: Schema<ServiceSpec> = object(
  {
    allocateLoadBalancerNodePorts: boolean,
    clusterIP,
    clusterIPs: array(clusterIP),
    externalIPs: array(ipAddress),
    externalName,
    externalTrafficPolicy: oneOf(['Cluster', 'Local']),
    healthCheckNodePort: integer({ min: 0, max: 65535 }),
    internalTrafficPolicy: oneOf(['Cluster', 'Local']),
    ipFamilies: array(oneOf(['IPv4', 'IPv6'])),
    ipFamilyPolicy: oneOf(['SingleStack', 'PreferDualStack', 'RequireDualStack']),
    loadBalancerClass: string(),
    loadBalancerIP: string(),
    loadBalancerSourceRanges: array(cidr),
    ports: array(servicePort, { uniqueBy: portName, uniqueWhat: 'port name' }),
    publishNotReadyAddresses: boolean,
    selector: labels,
    sessionAffinity: oneOf(['None', 'ClientIP']),
    sessionAffinityConfig: anyObject,
    trafficDistribution: string(),
    type: withDefault(oneOf(SERVICE_TYPES), 'ClusterIP'),
  },
  {
    expected: 'a Service spec object',
    check: checkService,
    map: (v): ServiceSpec => {
      const out: { -readonly [K in keyof ServiceSpec]: ServiceSpec[K] } = { ports: v.ports ?? [], selector: v.selector ?? {}, type: v.type };
      if (v.clusterIP !== undefined && v.clusterIP !== '') out.clusterIP = v.clusterIP;
      if (v.externalName !== undefined && v.externalName !== '') out.externalName = v.externalName;
      return out;
    },
  },
);

// ---- protocol selection ----

/** Protocols Istio recognises in a port name prefix or appProtocol (`protocol.Parse`). */
export const ISTIO_PROTOCOLS = ['http', 'http2', 'https', 'tcp', 'tls', 'grpc', 'grpc-web', 'mongo', 'mysql', 'redis', 'udp'] as const;
export type IstioProtocol = (typeof ISTIO_PROTOCOLS)[number];
const ISTIO_PROTOCOL_SET: ReadonlySet<string> = new Set(ISTIO_PROTOCOLS);

/**
 * Server-first protocols' ports, read as TCP when nothing names a protocol: the server
 * speaks first, so sniffing would wait for client bytes that never come (compat ref 1.0).
 */
const SERVER_FIRST_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** Kubernetes' standard appProtocol names, which only appProtocol may use. */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, IstioProtocol>> = {
  'kubernetes.io/h2c': 'http2',
  'kubernetes.io/ws': 'http',
  'kubernetes.io/wss': 'http',
};

/**
 * The protocol Istio gives a service port: UDP ports are `udp`; otherwise `appProtocol`
 * when set, else the port name, is read by its prefix before the first `-`
 * (`http-web` is http, `grpc-web-x` is grpc-web), case-insensitively. A port that names
 * no known protocol is `auto`, sniffed at connection time, except the server-first ports
 * above, which are `tcp`.
 */
export function portProtocol(p: Pick<ServicePort, 'name' | 'protocol' | 'appProtocol' | 'port'>): IstioProtocol | 'auto' {
  if (p.protocol === 'UDP') return 'udp';
  const label = (p.appProtocol ?? p.name ?? '').toLowerCase();
  const standard = KUBERNETES_APP_PROTOCOLS[label];
  if (standard !== undefined) return standard;
  if (label.startsWith('grpc-web')) return 'grpc-web';
  const dash = label.indexOf('-');
  const prefix = dash < 0 ? label : label.slice(0, dash);
  if (ISTIO_PROTOCOL_SET.has(prefix)) return prefix as IstioProtocol;
  return SERVER_FIRST_PORTS.has(p.port) ? 'tcp' : 'auto';
}

