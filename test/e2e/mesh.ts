/**
 * A small local mesh for end-to-end tests: a control plane on a temporary config
 * directory, one client sidecar (with a locality, if given), and run-time registrations
 * through the control plane's admin API (`/v1/registrations`), as `trellis run` makes
 * them. Everything on 127.0.0.1; waits are on the sidecar's configuration changes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import type { ClusterRuntime } from '../../src/proxy/config/clusters.js';
import { Proxy } from '../../src/proxy/proxy.js';
import type { Endpoint } from '../../src/proxy/upstream/lb/types.js';

const log = new Logger({ level: 'warn' });

/** The sidecar's cluster for port 8080 of service `name` in `default`. */
export const clusterName = (service: string): string => `outbound|8080||${service}.default.svc.cluster.local`;

/** A Kubernetes Service `name` with one HTTP port, 8080, selecting `app: name`. */
export function serviceYaml(name: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 8080}]}
`;
}

/** A service of a test mesh: its port, the backends behind it, and optional rules. */
export interface ServiceSpec {
  readonly name: string;
  /** The service port's name (it sets the protocol: http, http2, grpc...) and number. */
  readonly portName: string;
  readonly port: number;
  /** Backend ports on 127.0.0.1, one WorkloadEntry each. */
  readonly endpoints: readonly number[];
  /** A DestinationRule trafficPolicy (flow YAML). */
  readonly policy?: string;
  /** Fields of the VirtualService's one HTTP route besides `route` (block YAML), such as `retries: ...`. */
  readonly vs?: string;
}

/** The Service, WorkloadEntries, DestinationRule and VirtualService of each service, as one YAML stream. */
export function servicesYaml(services: readonly ServiceSpec[]): string {
  const out: string[] = [];
  for (const s of services) {
    out.push(`apiVersion: v1
kind: Service
metadata: {name: ${s.name}}
spec: {selector: {app: ${s.name}}, ports: [{name: ${s.portName}, port: ${s.port}}]}`);
    s.endpoints.forEach((port, i) => out.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${s.name}-${i}}
spec: {address: 127.0.0.1, ports: {${s.portName}: ${port}}, labels: {app: ${s.name}}}`));
    if (s.policy !== undefined) {
      out.push(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${s.name}}
spec: {host: ${s.name}, trafficPolicy: ${s.policy}}`);
    }
    if (s.vs !== undefined) {
      out.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${s.name}}
spec:
  hosts: [${s.name}]
  http:
  - ${s.vs.trim().split('\n').join('\n    ')}
    route: [{destination: {host: ${s.name}}}]`);
    }
  }
  return out.join('\n---\n') + '\n';
}

export interface MeshOptions {
  /** Istio YAML for the config directory. */
  readonly yaml: string;
  /** The sidecar's `region/zone/subzone`. */
  readonly locality?: string;
  /** Registrations live this long without a heartbeat. */
  readonly registrationTtlMs?: number;
}

export class Mesh {
  readonly dir: string;
  readonly cp: ControlPlane;
  readonly sidecar: Proxy;

  private constructor(dir: string, cp: ControlPlane, sidecar: Proxy) {
    this.dir = dir;
    this.cp = cp;
    this.sidecar = sidecar;
  }

  static async start(options: MeshOptions): Promise<Mesh> {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-mesh-'));
    writeFileSync(join(dir, 'mesh.yaml'), options.yaml);
    const cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, registrationTtlMs: options.registrationTtlMs ?? 120_000, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    const sidecar = new Proxy({
      xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' },
      ...(options.locality === undefined ? {} : { locality: options.locality }),
      bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log,
    });
    const mesh = new Mesh(dir, cp, sidecar);
    await sidecar.start();
    await sidecar.waitFor((s) => s.listeners.has('virtualOutbound'));
    return mesh;
  }

  /** The sidecar's outbound (HTTP proxy) port. */
  get port(): number {
    return this.sidecar.listenerPort('virtualOutbound') as number;
  }

  cluster(service: string): ClusterRuntime | undefined {
    return this.sidecar.config.current.clusters.get(clusterName(service));
  }

  /** Resolves once the sidecar's endpoints of `service` satisfy `done` (and its listeners are bound). */
  waitForEndpoints(service: string, done: (endpoints: readonly Endpoint[]) => boolean, timeoutMs = 10_000): Promise<void> {
    return this.sidecar.waitFor((s) => {
      const c = s.clusters.get(clusterName(service));
      return c !== undefined && s.routes.has('8080') && done(c.endpoints);
    }, timeoutMs);
  }

  /** Requests the sidecar has in flight to `endpoint` (`address:port`), as `/clusters` shows `rq_active`. */
  inFlight(endpoint: string): number {
    return this.sidecar.config.upstream.state(endpoint).activeRequests;
  }

  /** Registers an instance of `service` listening on `port` (`POST /v1/registrations`). */
  async register(service: string, name: string, port: number, extra: { locality?: string; healthy?: boolean } = {}): Promise<Registration> {
    const res = await fetch(`http://127.0.0.1:${this.cp.adminPort}/v1/registrations`, {
      method: 'POST',
      body: JSON.stringify({ name, namespace: 'default', serviceAccount: service, labels: { app: service }, address: '127.0.0.1', ports: { http: port }, ...extra }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    return new Registration(this.cp.adminPort, id, `127.0.0.1:${port}`);
  }

  async close(): Promise<void> {
    await this.sidecar.close();
    await this.cp.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One registration, as its workload keeps it: heartbeats (with readiness) and removal. */
export class Registration {
  readonly #adminPort: number;
  readonly id: string;
  /** The endpoint id the sidecar knows it by. */
  readonly endpoint: string;

  constructor(adminPort: number, id: string, endpoint: string) {
    this.#adminPort = adminPort;
    this.id = id;
    this.endpoint = endpoint;
  }

  /** `POST /v1/registrations/<id>/heartbeat`, reporting readiness when given. */
  async heartbeat(healthy?: boolean): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.#adminPort}/v1/registrations/${this.id}/heartbeat`, {
      method: 'POST',
      body: healthy === undefined ? '' : JSON.stringify({ healthy }),
    });
    assert.equal(res.status, 200, await res.text());
  }

  /** `DELETE /v1/registrations/<id>`. */
  async deregister(): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.#adminPort}/v1/registrations/${this.id}`, { method: 'DELETE' });
    assert.equal(res.status, 204, await res.text());
  }
}
