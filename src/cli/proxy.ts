/** `trellis proxy`: runs a sidecar or gateway proxy against a control plane, until SIGTERM (drains) or SIGINT. */
import { TrellisError } from '../core/errors.js';
import { Proxy, type ProxyType } from '../proxy/proxy.js';
import { parseXdsLocality } from '../proxy/xds/node.js';
import { type Command, LOG_FLAGS, LOG_FLAGS_USAGE, loggerFromFlags, parseFlags, portFlag, untilSignal } from './command.js';
import { releaseStartupMemory } from './idle-memory.js';
import { allowOptimizationUnderLoad, allowYoungGenerationGrowth } from './v8-flags.js';

const USAGE = `Usage: trellis proxy --xds <host:port> --type sidecar|router --id <id> [flags]

Runs the Trellis proxy (the data plane) for one workload (sidecar) or at the edge
(router, a gateway), configured over xDS by the control plane.

Flags:
      --xds HOST:PORT          Control plane xDS address (required)
      --type TYPE              sidecar or router (default sidecar)
      --id ID                  Proxy id, unique in the mesh (required)
      --namespace NS           Workload namespace (default "default")
      --service-account SA     Workload service account (default "default")
      --labels K=V,...         Workload labels (gateways: the labels Gateway selectors match)
      --locality R/Z/S         Where the workload runs: region/zone/subzone (locality failover)
      --bind ADDRESS           Address listeners bind (default 127.0.0.1)
      --outbound-port PORT     Sidecar outbound listener (default 15001)
      --inbound-port PORT      Sidecar inbound listener (default 15006)
      --admin-port PORT        Admin port: /ready /config_dump /clusters /stats /drain (default 15000)
      --stats-port PORT        Prometheus port: /stats/prometheus (default 15090)
${LOG_FLAGS_USAGE}
  -h, --help                   Show this help
`;

export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new TrellisError('TRELLIS_CLI_USAGE', `--labels takes k=v pairs separated by commas (got "${part}")`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export const proxyCommand: Command = {
  summary: 'Run a sidecar or gateway proxy (the data plane)',
  usage: USAGE,
  async run(args, io) {
    const { values } = parseFlags(args, {
      xds: { type: 'string' },
      type: { type: 'string', default: 'sidecar' },
      id: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      'service-account': { type: 'string', default: 'default' },
      labels: { type: 'string', default: '' },
      locality: { type: 'string', default: '' },
      bind: { type: 'string', default: '127.0.0.1' },
      'outbound-port': { type: 'string' },
      'inbound-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'stats-port': { type: 'string' },
      ...LOG_FLAGS,
    }, USAGE);
    if (values.xds === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--xds is required\n\n${USAGE}`);
    if (values.id === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--id is required\n\n${USAGE}`);
    const type = values.type as string;
    if (type !== 'sidecar' && type !== 'router') throw new TrellisError('TRELLIS_CLI_USAGE', `--type must be sidecar or router (got "${type}")`);
    const locality = values.locality as string;
    if (parseXdsLocality(locality) === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--locality takes region/zone/subzone (got "${locality}")`);
    const log = loggerFromFlags(values, io).child({ proxy: values.id });
    const proxy = new Proxy({
      xds: values.xds,
      type: type as ProxyType,
      id: values.id,
      namespace: values.namespace as string,
      serviceAccount: values['service-account'] as string,
      labels: parseLabels(values.labels as string),
      locality,
      bind: values.bind as string,
      outboundPort: portFlag('outbound-port', values['outbound-port'], 15001),
      inboundPort: portFlag('inbound-port', values['inbound-port'], 15006),
      adminPort: portFlag('admin-port', values['admin-port'], 15000),
      statsPort: portFlag('stats-port', values['stats-port'], 15090),
      log,
    });
    await proxy.start();
    // Start-up is over: give back its memory; from now on only load grows the young generation or wakes the optimizer.
    void proxy.whenReady.then(() => {
      releaseStartupMemory();
      allowYoungGenerationGrowth();
      allowOptimizationUnderLoad();
    });
    io.stdout.write(`trellis proxy ${values.id}: admin on http://${values.bind}:${proxy.adminPort}, metrics on http://${values.bind}:${proxy.statsPort}/stats/prometheus\n`);
    const signal = await untilSignal();
    log.info(signal === 'SIGTERM' ? 'draining' : 'shutting down');
    await proxy.close();
    return 0;
  },
};
