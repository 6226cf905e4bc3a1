/** WorkloadEntry (`networking.istio.io`): a workload outside Kubernetes, or a ServiceEntry endpoint. */
import { isDns1123Subdomain, isIP, labels } from '../common.js';
import { object, record } from '../schema/schema.js';
import { integer, port, string } from '../schema/scalars.js';

/** An IP address, a DNS name, or `unix://` path, as Istio allows for endpoints. */
const address = string({
  check: (v, path, ctx) => {
    if (v === '' || isIP(v) || v.startsWith('unix://') || isDns1123Subdomain(v.toLowerCase())) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an IP address, host name or unix:// path`);
    return false;
  },
});

/** `region/zone/subzone`, any part optional. */
const locality = string({
  check: (v, path, ctx) => {
    if (v.split('/').length <= 3) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `locality "${v}" must be region/zone/subzone`);
    return false;
  },
});

export const workloadEntrySpec = object(
  {
    address,
    ports: record(port),
    labels,
    network: string(),
    locality,
    weight: integer({ min: 0, max: 4294967295 }),
    serviceAccount: string(),
  },
  { map: (v) => ({ ...v, ports: v.ports ?? {}, labels: v.labels ?? {} }) },
);

export type WorkloadEntrySpec = NonNullable<ReturnType<typeof workloadEntrySpec.parse>>;
