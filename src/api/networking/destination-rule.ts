/**
 * DestinationRule (`networking.istio.io`). Rules after Istio's
 * `pkg/config/validation` (subset names, maglev table size, percentages); deprecated
 * spellings (`LEAST_CONN`, top-level `minimumRingSize`, `consecutiveErrors`,
 * `warmupDurationSecs`) are folded into their replacements with a deprecation finding.
 * Mesh-wide defaults (LEAST_REQUEST, 10 s connect timeout...) are applied at translation,
 * where mesh configuration can change them; this form keeps what the user wrote.
 */
import { dnsLabel, exportTo, labels, stringList, workloadSelectorMatchLabels } from '../common.js';
import { resolveHost } from '../hosts.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, exclusive, object, record, required } from '../schema/schema.js';
import { boolean, duration, integer, number, oneOf, port, string, uint32 } from '../schema/scalars.js';
import { certificateFile } from './certificate-file.js';
import { hostName, portSelector } from './destination.js';

const positiveInt32 = integer({ min: 0, max: 2147483647 });
const pct = number({ min: 0, max: 100 });

// ---- load balancer ----

const httpCookie = object({
  name: required(string({ nonEmpty: 'cookie name must not be empty' })),
  path: string(),
  ttl: duration({ allowZero: true }),
  attributes: array(object({ name: required(string()), value: string() })),
});

const MAX_MAGLEV_TABLE_SIZE = 5000011;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

const maglev = object({
  tableSize: required(
    integer({ min: 1, max: MAX_MAGLEV_TABLE_SIZE - 1 }),
    'tableSize must be set for maglev',
  ),
}, {
  check: (v, path, ctx) => {
    if (isPrime(v.tableSize)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'tableSize'], `tableSize must be a prime number for maglev (got ${v.tableSize})`);
    return false;
  },
});

const consistentHash = object(
  {
    httpHeaderName: string({ nonEmpty: 'must not be empty' }),
    httpCookie,
    useSourceIp: boolean,
    httpQueryParameterName: string({ nonEmpty: 'must not be empty' }),
    ringHash: object({ minimumRingSize: uint32 }),
    maglev,
    minimumRingSize: uint32,
  },
  {
    check: (v, path, ctx) =>
      exclusive(v, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'], path, ctx, true) &&
      exclusive(v, ['ringHash', 'maglev'], path, ctx) &&
      exclusive(v, ['minimumRingSize', 'maglev'], path, ctx) &&
      exclusive(v, ['minimumRingSize', 'ringHash'], path, ctx),
    map: (v, path, ctx) => {
      const { minimumRingSize, ...rest } = v;
      if (minimumRingSize === undefined) return rest;
      ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'minimumRingSize'], 'minimumRingSize is deprecated; use ringHash: {minimumRingSize: N}');
      return { ...rest, ringHash: { minimumRingSize } };
    },
  },
);

const locality = string({ nonEmpty: 'locality must not be empty' });

const localityLbSetting = object({
  enabled: boolean,
  distribute: array(object({ from: locality, to: record(integer({ min: 0, max: 100 })) }, {
    check: (v, path, ctx) => {
      const total = Object.values(v.to ?? {}).reduce((a, b) => a + b, 0);
      if (total === 100) return true;
      ctx.report('TRELLIS_CONFIG_OUT_OF_RANGE', [...path, 'to'], `locality weights must sum to 100 (got ${total})`);
      return false;
    },
  })),
  failover: array(object({ from: locality, to: locality })),
  failoverPriority: stringList,
}, {
  check: (v, path, ctx) =>
    exclusive(v, ['distribute', 'failover'], path, ctx) && exclusive(v, ['distribute', 'failoverPriority'], path, ctx),
});

/** Envoy zone-aware routing (newer Istio); cannot be combined with localityLbSetting. */
const zoneAwareLbSetting = object({
  enabled: boolean,
  failover: array(object({ from: locality, to: locality })),
  failoverPriority: stringList,
  minClusterSize: uint32,
});

const warmup = object({ duration: required(duration()), minimumPercent: pct, aggression: number({ min: 1 }) });

const loadBalancer = object(
  {
    simple: oneOf(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']),
    consistentHash,
    localityLbSetting,
    zoneAwareLbSetting,
    warmupDurationSecs: duration(),
    warmup,
  },
  {
    check: (v, path, ctx) =>
      exclusive(v, ['simple', 'consistentHash'], path, ctx) &&
      exclusive(v, ['localityLbSetting', 'zoneAwareLbSetting'], path, ctx) &&
      exclusive(v, ['warmupDurationSecs', 'warmup'], path, ctx),
    map: (v, path, ctx) => {
      const { warmupDurationSecs, simple, ...rest } = v;
      const out: typeof rest & { simple?: 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST'; warmup?: typeof v.warmup } = { ...rest };
      if (simple === 'LEAST_CONN') {
        ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'simple'], 'LEAST_CONN is deprecated; it means LEAST_REQUEST');
        out.simple = 'LEAST_REQUEST';
      } else if (simple !== undefined && simple !== 'UNSPECIFIED') {
        out.simple = simple;
      }
      if (warmupDurationSecs !== undefined) {
        ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'warmupDurationSecs'], 'warmupDurationSecs is deprecated; use warmup: {duration: ...}');
        out.warmup = { duration: warmupDurationSecs };
      }
      return out;
    },
  },
);

// ---- connection pool ----

const tcpSettings = object({
  maxConnections: positiveInt32,
  connectTimeout: duration(),
  tcpKeepalive: object({ probes: uint32, time: duration(), interval: duration() }),
  maxConnectionDuration: duration(),
  idleTimeout: duration({ allowZero: true }),
});

const httpSettings = object({
  http1MaxPendingRequests: positiveInt32,
  http2MaxRequests: positiveInt32,
  maxRequestsPerConnection: positiveInt32,
  maxRetries: positiveInt32,
  idleTimeout: duration({ allowZero: true }),
  h2UpgradePolicy: oneOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']),
  useClientProtocol: boolean,
  maxConcurrentStreams: positiveInt32,
  http2KeepAlive: object({ interval: duration(), timeout: duration() }),
});

export const connectionPool = object({ tcp: tcpSettings, http: httpSettings });

// ---- outlier detection ----

const outlierDetection = object(
  {
    consecutiveErrors: positiveInt32,
    splitExternalLocalOriginErrors: boolean,
    consecutiveLocalOriginFailures: uint32,
    consecutiveGatewayErrors: uint32,
    consecutive5xxErrors: uint32,
    interval: duration(),
    baseEjectionTime: duration(),
    maxEjectionPercent: integer({ min: 0, max: 100 }),
    minHealthPercent: integer({ min: 0, max: 100 }),
    outlierDetectionHttpErrorCodes: array(integer({ min: 100, max: 599 })),
  },
  {
    map: (v, path, ctx) => {
      const { consecutiveErrors, ...rest } = v;
      if (consecutiveErrors === undefined) return rest;
      // Older Istio counted `consecutiveErrors` as gateway errors (istio/api#617); current
      // Istio ignores it. Trellis keeps the older meaning unless a newer field is set.
      ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'consecutiveErrors'], 'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors');
      if (rest.consecutiveGatewayErrors !== undefined || rest.consecutive5xxErrors !== undefined) return rest;
      return { ...rest, consecutiveGatewayErrors: consecutiveErrors };
    },
  },
);

// ---- TLS ----

type ClientTlsFields = {
  mode?: string;
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: readonly string[];
  sni?: string;
  insecureSkipVerify?: boolean;
  caCrl?: string;
};

/**
 * Istio's `validateTLS`: ISTIO_MUTUAL takes no certificates; insecureSkipVerify leaves
 * nothing to verify against; credentialName replaces the file fields; MUTUAL needs the
 * client's certificate and key.
 */
function checkClientTls(v: ClientTlsFields, path: Path, ctx: ParseContext): boolean {
  let ok = true;
  const report = (code: 'TRELLIS_CONFIG_CONFLICT' | 'TRELLIS_CONFIG_REQUIRED', field: string, message: string): void => {
    ctx.report(code, [...path, field], message);
    ok = false;
  };
  const set = (fields: readonly (keyof ClientTlsFields)[]) => fields.filter((k) => v[k] !== undefined);
  if (v.mode === 'ISTIO_MUTUAL') {
    const extra = set(['clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'subjectAltNames', 'sni', 'caCrl'])[0];
    if (extra !== undefined) report('TRELLIS_CONFIG_CONFLICT', extra, `${extra} cannot be set with mode ISTIO_MUTUAL (the mesh supplies certificates)`);
    return ok;
  }
  if (v.mode !== 'SIMPLE' && v.mode !== 'MUTUAL') return true;
  if (v.insecureSkipVerify === true) {
    const extra = set(v.mode === 'SIMPLE' ? ['caCertificates', 'credentialName', 'subjectAltNames'] : ['caCertificates', 'subjectAltNames'])[0];
    if (extra !== undefined) report('TRELLIS_CONFIG_CONFLICT', extra, `${extra} cannot be set with insecureSkipVerify: true (nothing is verified)`);
  }
  if (v.credentialName !== undefined) {
    const extra = set(['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'])[0];
    if (extra !== undefined) report('TRELLIS_CONFIG_CONFLICT', extra, `${extra} cannot be set with credentialName (the certificates come from the secret)`);
    return ok;
  }
  if (v.mode === 'MUTUAL') {
    if (v.clientCertificate === undefined) report('TRELLIS_CONFIG_REQUIRED', 'clientCertificate', 'mode MUTUAL needs the client certificate (clientCertificate and privateKey, or credentialName)');
    if (v.privateKey === undefined) report('TRELLIS_CONFIG_REQUIRED', 'privateKey', "mode MUTUAL needs the client certificate's private key (privateKey)");
  }
  return ok;
}

const clientTls = object(
  {
    mode: oneOf(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']),
    clientCertificate: certificateFile,
    privateKey: certificateFile,
    caCertificates: certificateFile,
    credentialName: string(),
    subjectAltNames: stringList,
    sni: string(),
    insecureSkipVerify: boolean,
    caCrl: certificateFile,
  },
  { check: checkClientTls },
);

// ---- traffic policy ----

const portPolicyShape = { loadBalancer, connectionPool, outlierDetection, tls: clientTls };

const portTrafficPolicy = object({ port: required(portSelector), ...portPolicyShape });

const trafficPolicy = object({
  ...portPolicyShape,
  portLevelSettings: array(portTrafficPolicy, { uniqueBy: (p) => portKey(p), uniqueWhat: 'port' }),
  tunnel: object({
    protocol: oneOf(['CONNECT', 'POST']),
    targetHost: required(string({ nonEmpty: 'must not be empty' })),
    targetPort: required(port),
  }),
  proxyProtocol: object({ version: oneOf(['V1', 'V2']) }),
  retryBudget: object({ percent: pct, minRetryConcurrency: uint32, budgetInterval: duration() }),
});

function portKey(raw: unknown): string | undefined {
  const n = (raw as { port?: { number?: unknown } } | null)?.port?.number;
  return typeof n === 'number' ? String(n) : undefined;
}

export type TrafficPolicy = NonNullable<ReturnType<typeof trafficPolicy.parse>>;

const subset = object({ name: required(dnsLabel('subset name')), labels, trafficPolicy });

export interface DestinationRuleSpec {
  /** Resolved against the rule's namespace. */
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly NonNullable<ReturnType<typeof subset.parse>>[];
  readonly exportTo: readonly string[];
  readonly workloadSelector?: Readonly<Record<string, string>>;
}

function subsetName(raw: unknown): string | undefined {
  const n = (raw as { name?: unknown } | null)?.name;
  return typeof n === 'string' ? n : undefined;
}

export const destinationRuleSpec: Schema<DestinationRuleSpec> = object(
  {
    host: required(hostName),
    trafficPolicy,
    subsets: array(subset, { uniqueBy: subsetName, uniqueWhat: 'subset name' }),
    exportTo,
    workloadSelector: workloadSelectorMatchLabels,
  },
  {
    map: (v, _path: Path, ctx: ParseContext): DestinationRuleSpec => {
      const out: { -readonly [K in keyof DestinationRuleSpec]: DestinationRuleSpec[K] } = {
        host: resolveHost(v.host, ctx.namespace, ctx.domain),
        subsets: v.subsets ?? [],
        exportTo: v.exportTo ?? ['*'],
      };
      if (v.trafficPolicy !== undefined) out.trafficPolicy = v.trafficPolicy;
      if (v.workloadSelector !== undefined) out.workloadSelector = v.workloadSelector;
      return out;
    },
  },
);
