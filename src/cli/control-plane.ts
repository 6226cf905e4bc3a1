/**
 * `trellis control-plane --config <dir>`: runs the control plane in the foreground until
 * SIGINT or SIGTERM.
 */
import { statSync } from 'node:fs';
import { ControlPlane, DEFAULT_ADMIN_PORT, DEFAULT_XDS_PORT } from '../control-plane/control-plane.js';
import { parseDuration } from '../core/duration.js';
import { TrellisError } from '../core/errors.js';
import { DEFAULT_TRUST_DOMAIN } from '../core/spiffe.js';
import { type Command, LOG_FLAGS, LOG_FLAGS_USAGE, loggerFromFlags, parseFlags, portFlag, untilSignal } from './command.js';

const USAGE = `Usage: trellis control-plane --config <dir> [flags]

Runs the Trellis control plane: reads every YAML file under <dir> (and watches it),
keeps the service registry, and serves xDS (ADS over gRPC) to proxies and proxyless
gRPC clients, plus an admin HTTP API.

Flags:
      --config DIR             Configuration directory (required)
      --xds-port PORT          xDS (gRPC) port (default ${DEFAULT_XDS_PORT})
      --admin-port PORT        Admin HTTP API port (default ${DEFAULT_ADMIN_PORT})
      --host ADDRESS           Address to listen on (default 127.0.0.1)
      --trust-domain DOMAIN    SPIFFE trust domain (default ${DEFAULT_TRUST_DOMAIN})
      --registration-ttl DUR   How long a registration lives without heartbeats (default 10s)
${LOG_FLAGS_USAGE}
  -h, --help                   Show this help
`;

export const controlPlaneCommand: Command = {
  summary: 'Run the control plane (xDS server, registry, admin API)',
  usage: USAGE,
  async run(args, io) {
    const { values } = parseFlags(args, {
      config: { type: 'string' },
      'xds-port': { type: 'string' },
      'admin-port': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'trust-domain': { type: 'string', default: DEFAULT_TRUST_DOMAIN },
      'registration-ttl': { type: 'string', default: '10s' },
      ...LOG_FLAGS,
    }, USAGE);
    const dir = values.config;
    if (dir === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--config is required\n\n${USAGE}`);
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new TrellisError('TRELLIS_CLI_PATH_NOT_FOUND', `cannot read config directory "${dir}"`);
    }
    const ttl = parseDuration(values['registration-ttl'] as string);
    if (!ttl.ok || ttl.ms <= 0) throw new TrellisError('TRELLIS_CLI_USAGE', `--registration-ttl must be a positive duration such as 10s (got "${values['registration-ttl']}")`);
    const log = loggerFromFlags(values, io);
    const cp = new ControlPlane({
      configDir: dir,
      host: values.host as string,
      xdsPort: portFlag('xds-port', values['xds-port'], DEFAULT_XDS_PORT),
      adminPort: portFlag('admin-port', values['admin-port'], DEFAULT_ADMIN_PORT),
      mesh: { trustDomain: values['trust-domain'] as string },
      registrationTtlMs: ttl.ms,
      log,
    });
    await cp.start();
    io.stdout.write(`trellis control-plane: xDS on ${values.host}:${cp.xdsPort}, admin API on http://${values.host}:${cp.adminPort}\n`);
    await untilSignal();
    log.info('shutting down');
    await cp.close();
    return 0;
  },
};
