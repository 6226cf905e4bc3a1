/**
 * `trellis up [dir]`: the local mesh in the foreground — the control plane on the
 * directory's Istio configuration (`<dir>/mesh/`), an ingress gateway, and every
 * workload `<dir>/workloads.yaml` declares, each replica as `trellis run` (its own
 * sidecar, mesh address and port). Prints where things are, streams every process's
 * log with its name in front, and on Ctrl-C stops everything.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ControlPlane, DEFAULT_ADMIN_PORT, DEFAULT_XDS_PORT } from '../control-plane/control-plane.js';
import { TrellisError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Proxy } from '../proxy/proxy.js';
import { type Command, type CommandIO, LOG_FLAGS, LOG_FLAGS_USAGE, loggerFromFlags, parseFlags, portFlag, untilSignal } from './command.js';
import { type MeshDeclaration, readWorkloads, WORKLOADS_FILE } from './workloads-file.js';

const DEFAULT_DIR = 'trellis-mesh';
const CONFIG_DIR = 'mesh';
/** How long stopping workloads may take before they are killed. */
const STOP_TIMEOUT_MS = 10_000;
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
/** Where Trellis is installed (the directory with its package.json): `${TRELLIS_HOME}` in workloads.yaml. */
const TRELLIS_HOME = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/+$/, '');

const USAGE = `Usage: trellis up [dir] [flags]

Runs a local mesh in the foreground: a control plane on <dir>/${CONFIG_DIR}/ (Istio YAML),
an ingress gateway (labels istio=ingressgateway), and every workload <dir>/${WORKLOADS_FILE}
declares, each with its own sidecar. Ctrl-C stops everything. Without <dir>, uses
./${DEFAULT_DIR}, created with an empty configuration when it does not exist.

Flags:
      --xds-port PORT          Control plane xDS port (default ${DEFAULT_XDS_PORT})
      --admin-port PORT        Control plane admin API port (default ${DEFAULT_ADMIN_PORT})
${LOG_FLAGS_USAGE}
  -h, --help                   Show this help
`;

const EXAMPLE_WORKLOADS = `# Workloads trellis up runs, each with its own sidecar (see docs/local-mesh.md).
# Each replica gets PORT (listen on 127.0.0.1:$PORT) and HTTP_PROXY (its sidecar).
workloads: []
# - name: hello-v1
#   labels: {app: hello, version: v1}
#   command: [node, hello.js]
#   replicas: 1
`;

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolvePort(port));
    });
  });
}

/** Whether `p` settles within `ms`. */
function within(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, false);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Streams a child's output to ours, each line prefixed with its name. */
function prefixLines(stream: NodeJS.ReadableStream | null, prefix: string, out: { write(s: string): unknown }): void {
  if (stream === null) return;
  createInterface({ input: stream }).on('line', (line) => out.write(`${prefix} | ${line}\n`));
}

interface Replica {
  readonly label: string;
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
}

/** Creates the default directory, or checks the given one. */
function meshDirectory(arg: string | undefined, io: CommandIO): { dir: string; configDir: string } {
  const dir = resolve(arg ?? DEFAULT_DIR);
  if (arg !== undefined && !existsSync(dir)) throw new TrellisError('TRELLIS_CLI_PATH_NOT_FOUND', `no such directory: ${dir}`);
  const configDir = join(dir, CONFIG_DIR);
  if (!existsSync(configDir)) {
    mkdirSync(configDir, { recursive: true });
    io.stdout.write(`Created ${configDir}/ for the mesh's Istio configuration\n`);
  }
  if (arg === undefined && !existsSync(join(dir, WORKLOADS_FILE))) writeFileSync(join(dir, WORKLOADS_FILE), EXAMPLE_WORKLOADS);
  return { dir, configDir };
}

function startReplicas(mesh: MeshDeclaration, dir: string, cp: ControlPlane, log: Logger, io: CommandIO, level: string): Promise<Replica[]> {
  return Promise.all(mesh.workloads.flatMap((w) => Array.from({ length: w.replicas }, async (_, i): Promise<Replica> => {
    const label = w.replicas > 1 ? `${w.name}-${i}` : w.name;
    const port = await freePort();
    const labels = Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(',');
    const args = [BIN, 'run', '--name', w.name, '--namespace', w.namespace, '--service-account', w.serviceAccount, '--labels', labels, '--port', String(port),
      '--control-plane', `http://127.0.0.1:${cp.adminPort}`, '--xds', `127.0.0.1:${cp.xdsPort}`, '--log-level', level, '--', ...w.command];
    // stdin stays open and unused: when this process ends, however, the workload sees it close and stops.
    const proc = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, TRELLIS_HOME, ...w.env, TRELLIS_UP_CHILD: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    prefixLines(proc.stdout, label, io.stdout);
    prefixLines(proc.stderr, label, io.stderr);
    const exited = new Promise<void>((done) => proc.once('exit', (code, signal) => {
      log.info('workload exited', { workload: label, code, signal });
      done();
    }));
    return { label, name: w.name, proc, exited };
  })));
}

async function stopReplicas(replicas: readonly Replica[]): Promise<void> {
  for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(replicas.map((r) => r.exited)),
    new Promise<void>((done) => {
      timer = setTimeout(done, STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
}

/**
 * Resolves when every replica is registered, or has exited without (a command that fails
 * at once: waiting for it would only delay the error its log shows), or after `timeoutMs`.
 * True when all are registered.
 */
function allRegistered(cp: ControlPlane, replicas: readonly Replica[], timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    let exited = 0;
    let finished = false;
    const finish = (all: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      off();
      done(all);
    };
    // A replica that exits after registering is deregistered first, so it is counted once.
    const check = (): void => {
      const registered = cp.registrations.list().length;
      if (registered + exited >= replicas.length) finish(registered >= replicas.length);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const off = cp.registrations.subscribe(check);
    for (const r of replicas) {
      void r.exited.then(() => {
        exited++;
        check();
      });
    }
    check();
  });
}

export const upCommand: Command = {
  summary: 'Run a local mesh: control plane, gateway and the declared workloads',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseFlags(args, {
      'xds-port': { type: 'string' },
      'admin-port': { type: 'string' },
      ...LOG_FLAGS,
    }, USAGE);
    if (positionals.length > 1) throw new TrellisError('TRELLIS_CLI_USAGE', `one directory at most (got ${positionals.length})\n\n${USAGE}`);
    const { dir, configDir } = meshDirectory(positionals[0], io);
    const workloadsFile = join(dir, WORKLOADS_FILE);
    const mesh: MeshDeclaration = existsSync(workloadsFile) ? readWorkloads(workloadsFile, { ...process.env, TRELLIS_HOME }) : { open: '/', workloads: [] };
    const level = (values['log-level'] as string | undefined) ?? 'info';
    const log = loggerFromFlags(values, io);
    const cp = new ControlPlane({
      configDir,
      xdsPort: portFlag('xds-port', values['xds-port'], DEFAULT_XDS_PORT),
      adminPort: portFlag('admin-port', values['admin-port'], DEFAULT_ADMIN_PORT),
      log: log.child({ component: 'control-plane' }),
    });
    await cp.start();
    const gateway = new Proxy({
      xds: `127.0.0.1:${cp.xdsPort}`,
      type: 'router',
      id: 'istio-ingressgateway',
      namespace: 'istio-system',
      serviceAccount: 'istio-ingressgateway-service-account',
      labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
      bind: '127.0.0.1',
      outboundPort: 0,
      inboundPort: 0,
      adminPort: 0,
      statsPort: 0,
      log: log.child({ component: 'gateway' }),
    });
    let replicas: Replica[] = [];
    try {
      await gateway.start();
      replicas = await startReplicas(mesh, dir, cp, log, io, level);
      const total = mesh.workloads.reduce((n, w) => n + w.replicas, 0);
      const registered = await allRegistered(cp, replicas, 30_000);
      // The gateway's first configuration, then its listeners bound (none without a Gateway).
      if (await within(gateway.whenReady, 5_000)) await gateway.waitFor(() => true, 5_000).catch(() => undefined);
      // Ready when every sidecar and the gateway have acknowledged the configuration
      // that includes every workload, so the first request finds them all.
      await cp.whenSettled(10_000);
      const exited = replicas.filter((r) => r.proc.exitCode !== null || r.proc.signalCode !== null);
      const ports = [...gateway.config.current.listeners.values()].map((l) => l.port).sort((a, b) => a - b);
      io.stdout.write([
        '',
        `Trellis mesh up: ${dir}`,
        `  configuration   ${configDir}/ (watched; or trellis apply -f <file>)`,
        ...ports.map((p) => `  gateway         http://127.0.0.1:${p}${mesh.open}`),
        ...(ports.length === 0 ? ['  gateway         no Gateway resource selects istio=ingressgateway yet'] : []),
        `  control plane   http://127.0.0.1:${cp.adminPort}/debug/registryz (admin), 127.0.0.1:${cp.xdsPort} (xDS)`,
        `  gateway admin   http://127.0.0.1:${gateway.adminPort}/config_dump, metrics http://127.0.0.1:${gateway.statsPort}/stats/prometheus`,
        `  workloads       ${registered ? `${total} running` : `${cp.registrations.list().length} of ${total} registered so far`}: ${replicas.map((r) => r.label).join(', ') || 'none'}`,
        ...(exited.length === 0 ? [] : [`  exited          ${exited.map((r) => r.label).join(', ')} (see the log above)`]),
        'Press Ctrl-C to stop.',
        '',
      ].join('\n') + '\n');
      const signal = await untilSignal();
      log.info('stopping the mesh', { signal });
      return 0;
    } finally {
      await stopReplicas(replicas);
      await gateway.close();
      await cp.close();
    }
  },
};
