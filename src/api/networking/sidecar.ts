/** Sidecar (`networking.istio.io`): the listeners and egress scope of selected workloads. */
import { workloadSelectorLabels } from '../common.js';
import { array, object, required } from '../schema/schema.js';
import { oneOf, string } from '../schema/scalars.js';
import { destination } from './destination.js';
import { connectionPool } from './destination-rule.js';
import { servicePort } from './service-entry.js';

const captureMode = oneOf(['DEFAULT', 'IPTABLES', 'NONE']);

/** Egress hosts are `namespace/dnsName`: `./*`, `*\/*`, `istio-system/*`, `~/*`. */
const egressHost = string({
  check: (v, path, ctx) => {
    const slash = v.indexOf('/');
    if (slash > 0 && slash < v.length - 1) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `egress host "${v}" must be namespace/dnsName (e.g. "./*" or "istio-system/*")`);
    return false;
  },
});

const ingressTls = object({
  mode: oneOf(['SIMPLE', 'MUTUAL']),
  serverCertificate: string(),
  privateKey: string(),
  caCertificates: string(),
  credentialName: string(),
  subjectAltNames: array(string()),
});

const ingressListener = object({
  port: required(servicePort),
  bind: string(),
  captureMode,
  defaultEndpoint: string(),
  tls: ingressTls,
  connectionPool,
});

const egressListener = object({
  port: servicePort,
  bind: string(),
  captureMode,
  hosts: required(array(egressHost, { min: 1, tooFew: 'an egress listener needs at least one host' })),
});

export const sidecarSpec = object(
  {
    workloadSelector: workloadSelectorLabels,
    ingress: array(ingressListener),
    egress: array(egressListener),
    outboundTrafficPolicy: object({ mode: oneOf(['REGISTRY_ONLY', 'ALLOW_ANY']), egressProxy: destination }),
    inboundConnectionPool: connectionPool,
  },
  { map: (v) => ({ ...v, ingress: v.ingress ?? [], egress: v.egress ?? [] }) },
);

export type SidecarSpec = NonNullable<ReturnType<typeof sidecarSpec.parse>>;
