/**
 * The proxy, wired: xDS client → compiled runtime configuration → listeners, plus the
 * admin and Prometheus ports. Listeners are bound and closed as the configuration adds
 * and removes them; a removed listener stops accepting and its connections finish.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../core/log.js';
import { spiffeUri } from '../core/spiffe.js';
import { TYPE_URLS } from '../xds/type-urls.js';
import { RuntimeConfig, type RuntimeSnapshot } from './config/runtime.js';
import { certsDump } from './tls/certs-dump.js';
import { ListenerDispatch } from './dispatch.js';
import type { ListenContext, ListenerMode, ProxyIdentity } from './http/h1-proxy.js';
import { peerHeaders } from './telemetry/peer.js';
import { clustersText, resilienceStats } from './resilience/admin-output.js';
import { createListener, type Listener, nativeUnavailableReason } from './listener/fast-accept.js';
import { MetricsRegistry } from './telemetry/metrics.js';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from './upstream/lb/registry.js';
import { redactSecrets } from './tls/redact.js';
import { XdsClient } from './xds-client.js';
import { parseXdsLocality } from './xds/node.js';

/** Istio's default terminationDrainDuration. */
export const DRAIN_TIMEOUT_MS = 5_000;

export const PROXY_TYPES = { sidecar: 'sidecar', router: 'router' } as const;
export type ProxyType = (typeof PROXY_TYPES)[keyof typeof PROXY_TYPES];

export interface ProxyOptions {
  readonly xds: string;
  readonly type: ProxyType;
  readonly id: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly trustDomain?: string;
  /**
   * Where the workload runs, `region/zone/subzone` (trailing parts may be left out): sent
   * as the xDS node's `locality`, from which the control plane gives endpoints their
   * failover priorities. Default: unknown (empty), as Istio's proxies without topology labels.
   */
  readonly locality?: string;
  /** Address the proxy's listeners bind (local mesh: 127.0.0.1). */
  readonly bind: string;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** 0 disables. */
  readonly adminPort: number;
  readonly statsPort: number;
  readonly log: Logger;
  /**
   * Traffic capture (Istio's INTERCEPTION_MODE): `REDIRECT` (default; iptables sends the
   * workload's traffic to the inbound port) or `NONE` (the local mesh: the sidecar
   * listens on `instanceIp` at each port the workload serves and forwards to `appPorts`).
   */
  readonly interception?: 'REDIRECT' | 'NONE';
  /** The workload's own address (INSTANCE_IPS), where its inbound listeners bind with `NONE`. */
  readonly instanceIp?: string;
  /** Where the application listens (APP_PORTS): `41234` for every port, or `9080=41234,...`. */
  readonly appPorts?: string;
}

interface BoundListener {
  /** null while binding. */
  listener: Listener | null;
  closed: boolean;
  readonly dispatch: ListenerDispatch;
  port: number;
}

/** Where a listener of the configuration is served. */
interface ListenerPlace {
  readonly mode: ListenerMode;
  readonly host: string;
  /** The port to bind (0: any). */
  readonly port: number;
  /** The listener's port in the configuration: the destination port of uncaptured connections. */
  readonly configPort: number;
}

const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '']);

export class Proxy {
  readonly options: ProxyOptions;
  readonly config: RuntimeConfig;
  readonly metrics = new MetricsRegistry();
  readonly xds: XdsClient;
  readonly #log: Logger;
  readonly #listeners = new Map<string, BoundListener>();
  /** Waiters re-checked when a listener finishes binding. */
  readonly #bound = new Set<() => boolean>();
  #admin: HttpServer | undefined;
  #stats: HttpServer | undefined;
  #ready = false;
  #becameReady: () => void = () => undefined;
  /** Settles once listeners and clusters have first been received (`ready`); never rejects. */
  readonly whenReady = new Promise<void>((resolve) => (this.#becameReady = resolve));
  adminPort = 0;
  statsPort = 0;

  constructor(options: ProxyOptions) {
    this.options = options;
    this.#log = options.log;
    const lbs = new LoadBalancerRegistry();
    registerBuiltinLoadBalancers(lbs);
    this.config = new RuntimeConfig(lbs, options.log.child({ component: 'config' }));
    this.xds = new XdsClient({
      server: options.xds,
      node: {
        id: options.id,
        locality: parseXdsLocality(options.locality ?? '') ?? {},
        metadata: {
          TRELLIS_PROXY_TYPE: options.type,
          NAMESPACE: options.namespace,
          SERVICE_ACCOUNT: options.serviceAccount,
          LABELS: options.labels,
          OUTBOUND_PORT: String(options.outboundPort),
          INBOUND_PORT: String(options.inboundPort),
          ...(options.interception === undefined ? {} : { INTERCEPTION_MODE: options.interception }),
          ...(options.instanceIp === undefined ? {} : { INSTANCE_IPS: options.instanceIp }),
          ...(options.appPorts === undefined ? {} : { APP_PORTS: options.appPorts }),
        },
      },
      validate: this.config.validators(),
      log: options.log.child({ component: 'xds' }),
    });
    this.xds.onUpdate(() => this.config.update(this.xds));
    this.config.onChange((s) => this.#reconcile(s));
  }

  /** Ready once listeners and clusters have been received (Envoy's /ready after initial fetch). */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Resolves when `done` holds for the current configuration and every listener it names
   * is bound; checked on every change (for tests and for `trellis up`), or rejects after
   * `timeoutMs`.
   */
  waitFor(done: (s: RuntimeSnapshot) => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const s = this.config.current;
        if (!done(s) || [...this.#listeners.values()].some((l) => l.listener === null)) return false;
        clearTimeout(timer);
        off();
        this.#bound.delete(check);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        off();
        this.#bound.delete(check);
        reject(new Error(`proxy ${this.options.id}: configuration not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.config.onChange(() => void check());
      this.#bound.add(check);
      check();
    });
  }

  /** The port a listener is bound to (tests bind port 0). */
  listenerPort(name: string): number | undefined {
    return this.#listeners.get(name)?.port;
  }

  async start(): Promise<void> {
    if (this.options.adminPort >= 0) {
      this.#admin = createHttpServer((req, res) => this.#adminRequest(req.method ?? 'GET', req.url ?? '/', res));
      this.adminPort = await listenHttp(this.#admin, this.options.bind, this.options.adminPort);
    }
    if (this.options.statsPort >= 0) {
      this.#stats = createHttpServer((req, res) => {
        if ((req.url ?? '').startsWith('/stats/prometheus')) {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(this.metrics.render());
        } else {
          res.writeHead(404).end();
        }
      });
      this.statsPort = await listenHttp(this.#stats, this.options.bind, this.options.statsPort);
    }
    this.xds.start();
  }

  /**
   * Stops accepting, closes idle connections, lets in-flight requests finish (their
   * responses carry `Connection: close`), and after `timeoutMs` (Istio's
   * terminationDrainDuration, 5 s) closes what is left.
   */
  async drain(timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
    for (const l of this.#listeners.values()) {
      l.closed = true;
      l.listener?.close();
      l.dispatch.drain();
    }
    const all = [...this.#listeners.values()].flatMap((l) => [...l.dispatch.connections]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.#listeners.values()].map((l) => waitForConnections(l.dispatch.connections))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    for (const s of all) if (!s.destroyed) s.destroy();
  }

  /** Drains (at most `drainMs`, Istio's 5 s by default), then stops everything. */
  async close(drainMs = DRAIN_TIMEOUT_MS): Promise<void> {
    await this.drain(drainMs);
    await this.xds.close();
    for (const l of this.#listeners.values()) for (const s of l.dispatch.connections) s.destroy();
    this.#listeners.clear();
    this.config.close();
    await Promise.all([closeHttp(this.#admin), closeHttp(this.#stats)]);
  }

  #identity(): ProxyIdentity {
    const o = this.options;
    const workload = o.labels.app === undefined ? o.id : o.labels.version === undefined ? o.labels.app : `${o.labels.app}-${o.labels.version}`;
    return {
      workload,
      namespace: o.namespace,
      principal: spiffeUri({ trustDomain: o.trustDomain ?? 'cluster.local', namespace: o.namespace, serviceAccount: o.serviceAccount }),
      app: o.labels.app ?? 'unknown',
      version: o.labels.version ?? 'unknown',
      peerHeaders: peerHeaders({ name: o.id, workload, namespace: o.namespace, labels: o.labels }),
    };
  }

  #reconcile(snapshot: RuntimeSnapshot): void {
    if (!this.#ready && this.xds.status().types[TYPE_URLS.LISTENER]?.version && this.xds.status().types[TYPE_URLS.CLUSTER]?.version) {
      this.#ready = true;
      this.#becameReady();
    }
    const wanted = new Map<string, ListenerPlace>();
    for (const [name, l] of snapshot.listeners) {
      const place = this.#placeOf(name, l.address, l.port, l.direction);
      if (place !== undefined) wanted.set(name, place);
    }
    for (const [name, bound] of this.#listeners) {
      if (wanted.has(name)) continue;
      bound.closed = true;
      bound.listener?.close();
      bound.dispatch.drain();
      this.#listeners.delete(name);
      this.#log.info('listener removed: draining', { listener: name });
    }
    for (const [name, place] of wanted) {
      if (this.#listeners.has(name)) continue;
      this.#bind(name, place);
    }
  }

  /**
   * A sidecar serves `virtualOutbound` on the outbound port (an HTTP proxy for the
   * application) and `virtualInbound` on the inbound port (connections captured for the
   * application, chosen by their original destination port); other inbound listeners
   * (bound to a port of their own) as inbound. A gateway serves every listener on its
   * configured port.
   */
  #placeOf(name: string, address: string, port: number, direction: string): ListenerPlace | undefined {
    const o = this.options;
    const host = WILDCARD_ADDRESSES.has(address) ? o.bind : address;
    if (o.type === 'router') return { mode: 'gateway', host: o.bind, port, configPort: port };
    if (name === 'virtualOutbound') return { mode: 'outbound', host: o.bind, port: o.outboundPort, configPort: port };
    if (name === 'virtualInbound') return { mode: 'inbound', host: o.bind, port: o.inboundPort, configPort: port };
    if (direction === 'INBOUND') return { mode: 'inbound', host, port, configPort: port };
    return undefined;
  }

  #bind(name: string, place: ListenerPlace): void {
    const ctx: ListenContext = {
      config: this.config,
      listenerName: name,
      mode: place.mode,
      destinationPort: place.configPort,
      identity: this.#identity(),
      metrics: this.metrics,
      log: this.#log,
      secure: false,
      chain: null,
      connections: new Set<Socket>(),
      draining: false,
    };
    const dispatch = new ListenerDispatch(ctx);
    const bound: BoundListener = { listener: null, closed: false, dispatch, port: place.port };
    this.#listeners.set(name, bound);
    // The native helper drains the accept queue in one loop turn (Node 20 accepts one
    // connection per turn: 1,000 clients at once overflowed the backlog); it falls back
    // to node:net where it is not built.
    createListener(place.host, place.port, (socket) => dispatch.accept(socket), {
      native: process.env.TRELLIS_NATIVE_ACCEPT !== '0',
      sharedReadBuffer: true,
      onError: (err) => this.#log.warn('accept failed', { listener: name, err }),
    }).then(
      (listener) => {
        if (bound.closed) {
          listener.close(); // removed while binding
          return;
        }
        bound.listener = listener;
        bound.port = listener.port;
        this.#log.info('listening', { listener: name, address: `${place.host}:${listener.port}`, mode: place.mode, nativeAccept: listener.native, ...(listener.native ? {} : { why: nativeUnavailableReason }) });
        for (const check of [...this.#bound]) check();
      },
      (err: unknown) => {
        this.#log.error('listener failed', { listener: name, port: place.port, err });
        if (this.#listeners.get(name) === bound) this.#listeners.delete(name);
      },
    );
  }

  #adminRequest(method: string, url: string, res: import('node:http').ServerResponse): void {
    const path = url.split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, redactSecrets, 2) + '\n');
    };
    if (path === '/ready') {
      res.writeHead(this.#ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(this.#ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
    } else if (path === '/config_dump') {
      const dump: Record<string, unknown> = {};
      for (const t of [TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT]) dump[t] = Object.fromEntries(this.xds.resources(t));
      json(200, { xds: this.xds.status(), resources: dump });
    } else if (path === '/clusters') {
      const upstream = this.config.upstream;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(clustersText(this.config.current.clusters, (id) => upstream.state(id)));
    } else if (path === '/certs') {
      json(200, certsDump(this.config.tlsContexts));
    } else if (path === '/stats') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(this.metrics.render() + resilienceStats(this.config.current.clusters));
    } else if (path === '/drain' && method === 'POST') {
      void this.drain();
      json(200, { draining: true });
    } else {
      json(404, { error: { code: 'TRELLIS_ADMIN_NOT_FOUND', message: `no such endpoint: ${method} ${path}` } });
    }
  }
}

function listenHttp(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

function closeHttp(server: HttpServer | undefined): Promise<void> {
  if (server === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function waitForConnections(set: Set<Socket>): Promise<void> {
  if (set.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (set.size === 0) resolve();
    };
    for (const s of set) s.once('close', check);
  });
}
