/**
 * The servers of the proxy benchmark, each a child process on 127.0.0.1 with its
 * configuration written to the run's temporary directory: the upstream (nginx, one
 * worker, `return 200 "ok"`; or a `node:net` responder without nginx), and the proxies
 * under test — the Trellis sidecar (configured by an in-process control plane), nginx
 * (one worker, upstream keepalive) and HAProxy (one thread) — pinned to the proxy core.
 */
import { type IncomingMessage, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from '../src/control-plane/control-plane.js';
import { Logger } from '../src/core/log.js';
import { type Core, CORES, freePort, type Proc, start, waitUntil } from './proxy-procs.js';

/** The mesh host the sidecar routes, with the Service port (the port the Host header names). */
export const SERVICE_HOST = 'upstream.default.svc.cluster.local';
export const SERVICE_PORT = 8080;
export const AUTHORITY = `${SERVICE_HOST}:${SERVICE_PORT}`;

/** Upstream keep-alive connections a proxy may keep idle: above the 50 the load uses (perf notes: a smaller pool churns). */
const UPSTREAM_KEEPALIVE = 256;
const NGINX_WORKER_CONNECTIONS = 8_192;
const REQUESTS_PER_CONNECTION = 100_000_000;

export interface Server {
  readonly name: string;
  readonly proc: Proc;
  /** HTTP/1.1 port the load is sent to. */
  readonly port: number;
  /** Host header the load sends (the sidecar routes by it). */
  readonly host: string;
  /** h2c (prior knowledge) port, when this server has one. */
  readonly h2cPort?: number;
}

export interface GetResult {
  readonly status: number;
  readonly body: string;
}

/** One request on a new connection; for readiness probes, not for load. `tls`: HTTPS, the certificate not verified. */
export function httpGet(port: number, host: string, target = '/', tls = false): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: target, headers: { host }, agent: false, timeout: 2_000 };
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const req = tls ? httpsRequest({ ...options, rejectUnauthorized: false, servername: host.replace(/:\d+$/, '') }, onResponse) : request(options, onResponse);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function ready(proc: Proc, name: string, port: number, host: string, tls = false): Promise<void> {
  await waitUntil(proc, name, async () => {
    const r = await httpGet(port, host, '/', tls);
    return r.status === 200 && r.body === 'ok';
  });
}

function nginxPreamble(dir: string, name: string): string {
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, `${name}-${d}`), { recursive: true });
  return `worker_processes 1;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections ${NGINX_WORKER_CONNECTIONS}; }
http {
  access_log off;
  default_type text/plain;
  keepalive_requests ${REQUESTS_PER_CONNECTION};
  keepalive_timeout 300s;
  client_body_temp_path ${join(dir, `${name}-body`)};
  proxy_temp_path ${join(dir, `${name}-proxy`)};
  fastcgi_temp_path ${join(dir, `${name}-fastcgi`)};
  uwsgi_temp_path ${join(dir, `${name}-uwsgi`)};
  scgi_temp_path ${join(dir, `${name}-scgi`)};
`;
}

function startNginx(name: string, dir: string, conf: string, core: Core): Proc {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf);
  return start(name, 'nginx', ['-p', dir, '-c', file, '-e', join(dir, `${name}-error.log`), '-g', 'daemon off; master_process on;'], { core });
}

/** The upstream on the load core: nginx `return 200 "ok"`, or the `node:net` responder. */
export async function startUpstream(dir: string, nginx: boolean): Promise<Server> {
  const port = await freePort();
  let proc: Proc;
  if (nginx) {
    proc = startNginx('upstream-nginx', dir, `${nginxPreamble(dir, 'upstream-nginx')}
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok"; }
  }
}
`, CORES.load);
  } else {
    const script = fileURLToPath(new URL('./proxy-upstream.js', import.meta.url));
    proc = start('upstream-node', process.execPath, [script, String(port)], { core: CORES.load });
  }
  await ready(proc, proc.name, port, `127.0.0.1:${port}`);
  return { name: proc.name, proc, port, host: `127.0.0.1:${port}` };
}

/** The upstream block of nginx as a proxy: the upstream with keep-alive connections. */
function nginxUpstream(upstreamPort: number): string {
  return `
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive ${UPSTREAM_KEEPALIVE};
    keepalive_requests ${REQUESTS_PER_CONNECTION};
  }`;
}

const PROXY_LOCATION = `location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`;

/** nginx as a proxy: one worker on the proxy core, upstream keep-alive; an h2c listener too. */
export async function startNginxProxy(dir: string, upstreamPort: number): Promise<Server> {
  const [port, h2cPort] = [await freePort(), await freePort()];
  const proc = startNginx('nginx-proxy', dir, `${nginxPreamble(dir, 'nginx-proxy')}${nginxUpstream(upstreamPort)}
  server {
    listen 127.0.0.1:${port};
    ${PROXY_LOCATION}
  }
  server {
    listen 127.0.0.1:${h2cPort} http2;
    http2_max_requests ${REQUESTS_PER_CONNECTION};
    ${PROXY_LOCATION}
  }
}
`, CORES.proxy);
  await ready(proc, 'nginx proxy', port, AUTHORITY);
  return { name: 'nginx', proc, port, host: AUTHORITY, h2cPort };
}

/** A certificate and key on disk (PEM). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** nginx terminating TLS: one worker on the proxy core, HTTPS/1.1 and h2 on one port (ALPN), upstream keep-alive in plain HTTP/1.1. */
export async function startNginxTlsProxy(dir: string, upstreamPort: number, tls: TlsFiles): Promise<Server> {
  const port = await freePort();
  const proc = startNginx('nginx-tls', dir, `${nginxPreamble(dir, 'nginx-tls')}${nginxUpstream(upstreamPort)}
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_requests ${REQUESTS_PER_CONNECTION};
    ${PROXY_LOCATION}
  }
}
`, CORES.proxy);
  await ready(proc, 'nginx TLS proxy', port, GATEWAY_HOST, true);
  return { name: 'nginx', proc, port, host: GATEWAY_HOST };
}

/** HAProxy as a proxy: one thread on the proxy core, HTTP mode with server-side keep-alive. */
export async function startHaproxy(dir: string, upstreamPort: number): Promise<Server> {
  const port = await freePort();
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream
backend upstream
  server up1 127.0.0.1:${upstreamPort}
`);
  const proc = start('haproxy', 'haproxy', ['-db', '-f', file], { core: CORES.proxy });
  await ready(proc, 'haproxy', port, AUTHORITY);
  return { name: 'HAProxy', proc, port, host: AUTHORITY };
}

function meshYaml(upstreamPort: number): string {
  return `apiVersion: v1
kind: Service
metadata: {name: upstream, namespace: default}
spec: {selector: {app: upstream}, ports: [{name: http, port: ${SERVICE_PORT}}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: upstream-1, namespace: default}
spec: {address: 127.0.0.1, ports: {http: ${upstreamPort}}, labels: {app: upstream, version: v1}}
`;
}

/**
 * The host the gateway's VirtualService routes (and the certificate's DNS name). The
 * Gateway server itself takes any server name: wrk sends the URL's address (127.0.0.1) as
 * SNI, and a server limited to this host would match no filter chain (Envoy closes such a
 * connection, and so does Trellis).
 */
export const GATEWAY_HOST = 'bench.example.com';

function gatewayYaml(port: number, tls: TlsFiles): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${port}, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, serverCertificate: ${tls.cert}, privateKey: ${tls.key}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: [${GATEWAY_HOST}]
  gateways: [bench-gateway]
  http:
  - route: [{destination: {host: ${SERVICE_HOST}, port: {number: ${SERVICE_PORT}}}}]
`;
}

export interface TrellisServer extends Server {
  readonly controlPlane: ControlPlane;
  readonly adminPort: number;
  readonly statsPort: number;
  /** Absolute-form (HTTP_PROXY style) request routed too. */
  readonly absoluteFormOk: boolean;
}

export interface TrellisOptions {
  /** Added to the sidecar's environment (e.g. `TRELLIS_NATIVE_ACCEPT`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Default `warn`; `info` logs each listener's `listening` line (which accept path it uses). */
  readonly logLevel?: 'info' | 'warn';
  /** The CLI to run (another build's `dist/src/cli/bin.js`, to compare builds); default this one. */
  readonly bin?: string;
}

/**
 * A control plane in this process on a config directory with one Service and its
 * WorkloadEntry (the upstream), and the sidecar (`trellis proxy`) as a child process on
 * the proxy core; ready once a request sent with only a Host header is routed to the
 * upstream. `nodeArgs` go to node (for `--cpu-prof`); `bin` is the CLI to run (another
 * build's, to compare two in one run).
 */
export async function startTrellis(dir: string, upstreamPort: number, nodeArgs: readonly string[], options: TrellisOptions = {}): Promise<TrellisServer> {
  const port = await freePort();
  const t = await startTrellisProxy(dir, meshYaml(upstreamPort), nodeArgs, options, {
    name: 'trellis-sidecar', port, host: AUTHORITY, tls: false,
    args: ['--type', 'sidecar', '--labels', 'app=bench,version=v1', '--outbound-port', String(port)],
  });
  const abs = await httpGet(port, AUTHORITY, `http://${AUTHORITY}/`).catch(() => ({ status: 0, body: '' }));
  return { ...t, absoluteFormOk: abs.status === 200 && abs.body === 'ok' };
}

/**
 * The Trellis gateway (`trellis proxy --type router`) terminating TLS: a Gateway with one
 * HTTPS server (SIMPLE, the given certificate) and a VirtualService to the upstream, the
 * way an Istio ingress gateway is configured; ready once an HTTPS request is routed.
 */
export async function startTrellisGateway(dir: string, upstreamPort: number, tls: TlsFiles, nodeArgs: readonly string[], options: TrellisOptions = {}): Promise<TrellisServer> {
  const port = await freePort();
  return startTrellisProxy(dir, `${meshYaml(upstreamPort)}---\n${gatewayYaml(port, tls)}`, nodeArgs, options, {
    name: 'trellis-gateway', port, host: GATEWAY_HOST, tls: true,
    args: ['--type', 'router', '--labels', 'istio=ingressgateway'],
  });
}

interface ProxyRole {
  readonly name: string;
  readonly port: number;
  readonly host: string;
  readonly tls: boolean;
  readonly args: readonly string[];
}

async function startTrellisProxy(dir: string, yaml: string, nodeArgs: readonly string[], options: TrellisOptions, role: ProxyRole): Promise<TrellisServer> {
  const bin = options.bin ?? fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  const configDir = join(dir, 'mesh');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'mesh.yaml'), yaml);
  const controlPlane = new ControlPlane({ configDir, xdsPort: 0, adminPort: 0, log: new Logger({ level: 'warn' }) });
  await controlPlane.start();
  const statsPort = await freePort();
  const proc = start(role.name, process.execPath, [
    ...nodeArgs, bin, 'proxy', '--xds', `127.0.0.1:${controlPlane.xdsPort}`, '--id', 'bench', ...role.args,
    '--admin-port', '0', '--stats-port', String(statsPort), '--log-level', options.logLevel ?? 'warn',
  ], { core: CORES.proxy, env: { ...process.env, ...options.env } });
  try {
    await ready(proc, role.name.replace('-', ' '), role.port, role.host, role.tls);
  } catch (err) {
    await controlPlane.close();
    throw err;
  }
  const adminPort = Number(/admin on http:\/\/[^:]+:(\d+)/.exec(proc.stdout)?.[1] ?? 0);
  return { name: 'Trellis', proc, port: role.port, host: role.host, controlPlane, adminPort, statsPort, absoluteFormOk: false };
}

/** Requests the sidecar counted in `istio_requests_total`, by response code (proves metrics are on). */
export async function trellisRequestCounts(statsPort: number): Promise<Record<string, number>> {
  const r = await httpGet(statsPort, `127.0.0.1:${statsPort}`, '/stats/prometheus');
  const out: Record<string, number> = {};
  for (const line of r.body.split('\n')) {
    const m = /^istio_requests_total\{.*response_code="(\d+)".*\} (\d+)$/.exec(line);
    if (m !== null) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  }
  return out;
}
