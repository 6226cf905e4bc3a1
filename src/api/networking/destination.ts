/** `Destination` and `PortSelector`, shared by routes, mirrors and TCP/TLS routes. */
import { dnsLabel, wildcardDomainProblem } from '../common.js';
import { resolveHost } from '../hosts.js';
import { type Schema, object, required } from '../schema/schema.js';
import { number, port, string } from '../schema/scalars.js';

export const portSelector = object({ number: port });

export const hostName: Schema<string> = string({
  nonEmpty: 'host must not be empty',
  check: (v, path, ctx) => {
    const problem = wildcardDomainProblem(v);
    if (problem === undefined) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `invalid host "${v}": ${problem}`);
    return false;
  },
});

export interface Destination {
  /** Fully qualified: short names are resolved against the rule's namespace. */
  readonly host: string;
  readonly subset?: string;
  readonly port?: number;
}

export const destination: Schema<Destination> = object(
  { host: required(hostName), subset: dnsLabel('subset'), port: portSelector },
  {
    expected: 'a destination object ({host, subset, port})',
    map: (v, _path, ctx): Destination => {
      const out: { host: string; subset?: string; port?: number } = { host: resolveHost(v.host, ctx.namespace, ctx.domain) };
      if (v.subset !== undefined) out.subset = v.subset;
      if (v.port?.number !== undefined) out.port = v.port.number;
      return out;
    },
  },
);

/** Istio `Percent` (`{value: 0..100}`), as a plain number. */
export const percent: Schema<number> = object({ value: required(number({ min: 0, max: 100 })) }, { map: (v) => v.value });
