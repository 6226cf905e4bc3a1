/** `trellis proxy`: runs a sidecar or gateway proxy against a control plane, until SIGTERM (drains) or SIGINT. */
import { TrellisError } from '../core/errors.js';
import { LOG_LEVELS, Logger, type LogFormat, type LogLevel } from '../core/log.js';
import { Proxy, type ProxyType } from '../proxy/proxy.js';
import { type Command, parseFlags } from './command.js';

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
      --bind ADDRESS           Address listeners bind (default 127.0.0.1)
      --outbound-port PORT     Sidecar outbound listener (default 15001)
      --inbound-port PORT      Sidecar inbound listener (default 15006)
      --admin-port PORT        Admin port: /ready /config_dump /clusters /stats /drain (default 15000)
      --stats-port PORT        Prometheus port: /stats/prometheus (default 15090)
      --log-level LEVEL        debug|info|warn|error (default info)
      --log-format FORMAT      text|json (default text)
  -h, --help                   Show this help
`;

function port(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new TrellisError('TRELLIS_CLI_USAGE', `--${name} must be a port number (got "${v}")`);
  return n;
}

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
      bind: { type: 'string', default: '127.0.0.1' },
      'outbound-port': { type: 'string' },
      'inbound-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'stats-port': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'log-format': { type: 'string', default: 'text' },
      help: { type: 'boolean', short: 'h', default: false },
    }, USAGE);
    if (values.help === true) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (values.xds === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--xds is required\n\n${USAGE}`);
    if (values.id === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--id is required\n\n${USAGE}`);
    const type = values.type as string;
    if (type !== 'sidecar' && type !== 'router') throw new TrellisError('TRELLIS_CLI_USAGE', `--type must be sidecar or router (got "${type}")`);
    const level = values['log-level'] as string;
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new TrellisError('TRELLIS_CLI_USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const format = values['log-format'] as string;
    if (format !== 'text' && format !== 'json') throw new TrellisError('TRELLIS_CLI_USAGE', '--log-format must be text or json');
    const log = new Logger({ level: level as LogLevel, format: format as LogFormat, sink: io.stderr }).child({ proxy: values.id });
    const proxy = new Proxy({
      xds: values.xds,
      type: type as ProxyType,
      id: values.id,
      namespace: values.namespace as string,
      serviceAccount: values['service-account'] as string,
      labels: parseLabels(values.labels as string),
      bind: values.bind as string,
      outboundPort: port('outbound-port', values['outbound-port'], 15001),
      inboundPort: port('inbound-port', values['inbound-port'], 15006),
      adminPort: port('admin-port', values['admin-port'], 15000),
      statsPort: port('stats-port', values['stats-port'], 15090),
      log,
    });
    await proxy.start();
    io.stdout.write(`trellis proxy ${values.id}: admin on http://${values.bind}:${proxy.adminPort}, metrics on http://${values.bind}:${proxy.statsPort}/stats/prometheus\n`);
    const signal = await new Promise<string>((resolve) => {
      const on = (s: string) => () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        resolve(s);
      };
      const onInt = on('SIGINT');
      const onTerm = on('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    log.info(signal === 'SIGTERM' ? 'draining' : 'shutting down');
    await proxy.close();
    return 0;
  },
};
