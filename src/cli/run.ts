/**
 * `trellis run`: one application in the local mesh, with its sidecar next to it. The
 * workload gets an address of its own on loopback (127.x.y.z; Linux routes all of
 * 127/8 to `lo`), where its sidecar listens on every port the workload's Services target
 * (Istio's interception mode NONE: nothing is captured) and forwards to the application's
 * `--port` on 127.0.0.1. The workload is registered with the control plane at that
 * address and kept alive with heartbeats; the application gets `HTTP_PROXY` pointing at
 * the sidecar's outbound listener, so calls to `http://reviews:9080/...` go through the
 * mesh. When the application exits the workload is deregistered and the sidecar stops;
 * if this process dies, the heartbeats stop and the registration expires after its TTL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { TrellisError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RuntimeSnapshot } from '../proxy/config/runtime.js';
import { Proxy } from '../proxy/proxy.js';
import { type Command, LOG_FLAGS, LOG_FLAGS_USAGE, loggerFromFlags, parseFlags, portFlag } from './command.js';
import { parseLabels } from './proxy.js';

export const DEFAULT_CONTROL_PLANE_URL = 'http://127.0.0.1:15014';
export const DEFAULT_XDS_ADDRESS = '127.0.0.1:15010';

const USAGE = `Usage: trellis run --name <workload> --port <app-port> [flags] -- <command> [args...]

Runs an application with a Trellis sidecar next to it, registered with a running
control plane (trellis up, or trellis control-plane). The application gets HTTP_PROXY
pointing at its sidecar and PORT set to --port; calls to other services by name
(http://reviews:9080/...) go through the mesh, and the mesh reaches the application
through its sidecar.

Flags:
      --name NAME              Workload name, e.g. reviews-v1 (required)
      --port PORT              The port the application listens on, on 127.0.0.1 (required)
      --namespace NS           Namespace (default "default")
      --service-account SA     Service account (default: the name)
      --labels K=V,...         Labels; Services select workloads by them (default app=<name>)
      --control-plane URL      Control plane admin API (default $TRELLIS_CONTROL_PLANE or ${DEFAULT_CONTROL_PLANE_URL})
      --xds HOST:PORT          Control plane xDS address (default $TRELLIS_XDS or ${DEFAULT_XDS_ADDRESS})
      --address IP             The workload's mesh address (default: a free one in 127.0.0.0/8)
${LOG_FLAGS_USAGE}
  -h, --help                   Show this help
`;

/** A random loopback address, avoiding 127.0.0.x. */
export function randomLoopbackAddress(): string {
  const b = randomBytes(3);
  return `127.${1 + ((b[0] as number) % 254)}.${b[1] as number}.${1 + ((b[2] as number) % 254)}`;
}

interface Registration {
  readonly id: string;
  readonly ttlMs: number;
}

async function register(url: string, body: object): Promise<Registration> {
  let res: Response;
  try {
    res = await fetch(`${url}/v1/registrations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (err) {
    throw new TrellisError('TRELLIS_CLI_CONTROL_PLANE_UNREACHABLE', `cannot reach the control plane at ${url} (${(err as Error).message}): start the mesh with "trellis up", or pass --control-plane`);
  }
  const answer = (await res.json().catch(() => ({}))) as { id?: string; ttlMs?: number; error?: { message?: string } };
  if (res.status !== 201 || answer.id === undefined) {
    throw new TrellisError('TRELLIS_RUN_REGISTRATION_FAILED', `the control plane at ${url} refused the registration: ${answer.error?.message ?? `HTTP ${res.status}`}`);
  }
  return { id: answer.id, ttlMs: answer.ttlMs ?? 10_000 };
}

function heartbeat(url: string, id: string, log: Logger): void {
  fetch(`${url}/v1/registrations/${encodeURIComponent(id)}/heartbeat`, { method: 'POST' }).then(
    (res) => {
      if (res.status === 404) log.warn('registration expired (the control plane restarted?): the workload gets no traffic until it is run again', { id });
    },
    (err: unknown) => log.warn('heartbeat failed', { err }),
  );
}

async function deregister(url: string, id: string): Promise<void> {
  await fetch(`${url}/v1/registrations/${encodeURIComponent(id)}`, { method: 'DELETE' }).catch(() => undefined);
}

/** How long the sidecar drains once its application has exited. */
const LOCAL_DRAIN_MS = 1_000;
/** How long an application may take to start listening; one that never does is not registered. */
const READY_TIMEOUT_MS = 60_000;
const READY_PROBE_INTERVAL_MS = 50;

/**
 * Resolves true once 127.0.0.1:`port` accepts a connection (probed every 50 ms); false
 * after `timeoutMs`, or as soon as `gone` settles (the application exited: stop probing).
 */
function listening(port: number, timeoutMs: number, gone: Promise<unknown>): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  return new Promise((resolve) => {
    const stop = (): void => {
      stopped = true;
      clearTimeout(timer);
      resolve(false);
    };
    void gone.then(stop, stop);
    const probe = (): void => {
      if (stopped) return;
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        stopped = true;
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        if (stopped) return;
        if (performance.now() >= deadline) stop();
        else timer = setTimeout(probe, READY_PROBE_INTERVAL_MS);
      });
    };
    probe();
  });
}

function configComplete(s: RuntimeSnapshot): boolean {
  const outbound = s.listeners.get('virtualOutbound');
  if (outbound === undefined) return false;
  for (const c of outbound.chains) if (c.action.kind === 'http' && c.action.rds !== null && !s.routes.has(c.action.rds)) return false;
  return true;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1;
}

export const runCommand: Command = {
  summary: 'Run an application with a sidecar in a running local mesh',
  usage: USAGE,
  async run(args, io) {
    const dash = args.indexOf('--');
    const own = dash < 0 ? args : args.slice(0, dash);
    const command = dash < 0 ? [] : args.slice(dash + 1);
    const { values } = parseFlags(own, {
      name: { type: 'string' },
      port: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      'service-account': { type: 'string' },
      labels: { type: 'string' },
      'control-plane': { type: 'string' },
      xds: { type: 'string' },
      address: { type: 'string' },
      ...LOG_FLAGS,
    }, USAGE);
    const name = values.name;
    if (name === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--name is required\n\n${USAGE}`);
    if (values.port === undefined) throw new TrellisError('TRELLIS_CLI_USAGE', `--port is required (the port the application listens on)\n\n${USAGE}`);
    if (command.length === 0) throw new TrellisError('TRELLIS_CLI_USAGE', `the command to run goes after --\n\n${USAGE}`);
    const appPort = portFlag('port', values.port, 0);
    const namespace = values.namespace as string;
    const serviceAccount = values['service-account'] ?? name;
    const labels = values.labels === undefined ? { app: name } : parseLabels(values.labels);
    const url = (values['control-plane'] ?? process.env.TRELLIS_CONTROL_PLANE ?? DEFAULT_CONTROL_PLANE_URL).replace(/\/+$/, '');
    const xds = values.xds ?? process.env.TRELLIS_XDS ?? DEFAULT_XDS_ADDRESS;
    const address = values.address ?? randomLoopbackAddress();
    const log = loggerFromFlags(values, io).child({ workload: name });

    const proxy = new Proxy({
      xds,
      type: 'sidecar',
      id: `${name}-${randomBytes(3).toString('hex')}.${namespace}`,
      namespace,
      serviceAccount,
      labels,
      bind: '127.0.0.1',
      outboundPort: 0,
      inboundPort: 0,
      adminPort: 0,
      statsPort: 0,
      interception: 'NONE',
      instanceIp: address,
      appPorts: String(appPort),
      log: log.child({ component: 'sidecar' }),
    });
    await proxy.start();
    let registration: Registration | undefined;
    let beat: NodeJS.Timeout | undefined;
    let child: ChildProcess | undefined;
    const stop = async (): Promise<void> => {
      if (beat !== undefined) clearInterval(beat);
      if (registration !== undefined) await deregister(url, registration.id);
      // The application is gone: the sidecar has nothing left to finish for long.
      await proxy.close(LOCAL_DRAIN_MS);
    };
    try {
      // The application starts once its sidecar has a complete configuration: the outbound
      // listener and every route table it names (xDS sends routes after listeners).
      await proxy.waitFor(configComplete, 30_000);
      const outbound = `http://127.0.0.1:${proxy.listenerPort('virtualOutbound') as number}`;
      const [cmd, ...cmdArgs] = command as [string, ...string[]];
      const env = { ...process.env, HTTP_PROXY: outbound, http_proxy: outbound, PORT: String(appPort), TRELLIS_WORKLOAD: name, TRELLIS_NAMESPACE: namespace, TRELLIS_MESH_ADDRESS: address };
      const app = spawn(cmd, cmdArgs, { stdio: 'inherit', env });
      child = app;
      // Started by trellis up, whose end closes our stdin: stop with it, even if it was
      // killed outright and could not tell us (the application would be left running).
      const forward = (signal: NodeJS.Signals) => (): void => void app.kill(signal);
      const onInt = forward('SIGINT');
      const onTerm = forward('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
        app.once('error', (err) => reject(new TrellisError('TRELLIS_RUN_COMMAND_FAILED', `cannot start "${cmd}": ${err.message}`)));
        app.once('exit', (c, s) => resolve([c, s]));
      });
      if (process.env.TRELLIS_UP_CHILD === '1') {
        process.stdin.once('end', () => void app.kill('SIGTERM'));
        process.stdin.resume();
        // Reading stdin keeps the process alive: stop once the application is gone.
        const stopReading = (): void => void process.stdin.destroy();
        exited.then(stopReading, stopReading);
      }
      // Registered (and so sent traffic) only once the application accepts connections:
      // a readiness check, as Kubernetes would make before adding the endpoint.
      if (await listening(appPort, READY_TIMEOUT_MS, exited)) {
        registration = await register(url, { name, namespace, serviceAccount, labels, address, ports: {} });
        const reg = registration;
        beat = setInterval(heartbeat, Math.max(500, Math.floor(reg.ttlMs / 3)), url, reg.id, log);
        // The application's pid: the process to stop (or kill -9) to see the mesh route around it.
        log.info('workload registered', { id: reg.id, address, appPort, pid: app.pid, httpProxy: outbound, admin: `http://127.0.0.1:${proxy.adminPort}` });
      }
      const [code, signal] = await exited.finally(() => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      });
      log.info('application exited: deregistering', { code, signal });
      return exitCodeOf(code, signal);
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await stop();
    }
  },
};
