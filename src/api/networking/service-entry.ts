/**
 * ServiceEntry (`networking.istio.io`). Hosts are used as written: Istio does not expand
 * ServiceEntry hosts against the namespace (`convertServices` takes them verbatim).
 */
import { cidr, exportTo, stringList, workloadSelectorLabels } from '../common.js';
import { array, exclusive, object, required } from '../schema/schema.js';
import { oneOf, port, string } from '../schema/scalars.js';
import { hostName } from './destination.js';
import { workloadEntrySpec } from './workload-entry.js';

export const SERVICE_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'REDIS', 'MYSQL', 'TCP', 'TLS', 'UDP'] as const;
const PROTOCOL_SET: ReadonlySet<string> = new Set(SERVICE_PROTOCOLS);

export const servicePort = object({
  number: required(port),
  protocol: string({
    check: (v, path, ctx) => {
      if (PROTOCOL_SET.has(v.toUpperCase())) return true;
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `invalid protocol "${v}" (one of ${SERVICE_PROTOCOLS.join(', ')})`);
      return false;
    },
  }),
  name: required(string({ nonEmpty: 'port name must be set' })),
  targetPort: port,
});

function portName(raw: unknown): string | undefined {
  const n = (raw as { name?: unknown } | null)?.name;
  return typeof n === 'string' ? n : undefined;
}

export const serviceEntrySpec = object(
  {
    hosts: required(array(hostName, { min: 1, tooFew: 'a ServiceEntry needs at least one host' })),
    addresses: array(cidr),
    ports: array(servicePort, { uniqueBy: portName, uniqueWhat: 'port name' }),
    location: oneOf(['MESH_EXTERNAL', 'MESH_INTERNAL']),
    resolution: oneOf(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']),
    endpoints: array(workloadEntrySpec),
    workloadSelector: workloadSelectorLabels,
    exportTo,
    subjectAltNames: stringList,
  },
  {
    check: (v, path, ctx) => {
      if (!exclusive(v, ['endpoints', 'workloadSelector'], path, ctx)) return false;
      const resolution = v.resolution ?? 'NONE';
      if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && (v.endpoints ?? []).length === 0) {
        const i = v.hosts.findIndex((h) => h.startsWith('*'));
        if (i >= 0) {
          ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, 'hosts', i], `wildcard host "${v.hosts[i]}" cannot be resolved with resolution ${resolution}; use DYNAMIC_DNS or endpoints`);
          return false;
        }
      }
      if (resolution === 'STATIC' && (v.endpoints ?? []).length === 0 && v.workloadSelector === undefined) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'endpoints'], 'resolution STATIC needs endpoints or a workloadSelector');
        return false;
      }
      return true;
    },
    map: (v) => ({
      ...v,
      addresses: v.addresses ?? [],
      ports: v.ports ?? [],
      location: v.location ?? 'MESH_EXTERNAL',
      resolution: v.resolution ?? 'NONE',
      endpoints: v.endpoints ?? [],
      exportTo: v.exportTo ?? ['*'],
    }),
  },
);

export type ServiceEntrySpec = NonNullable<ReturnType<typeof serviceEntrySpec.parse>>;
