/**
 * The Aggregated Discovery Service over gRPC (state of the world). Each stream gets its
 * proxy's snapshot on its first request and every new one on `push()`. Snapshots are
 * checked for consistency before they are published; an inconsistent or unencodable
 * translation is logged, recorded on the proxy's status, and the previous snapshot keeps
 * serving. Delta xDS answers UNIMPLEMENTED for now.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../core/log.js';
import { adsServiceDefinition } from '../../xds/protos.js';
import { PUSH_ORDER, TYPE_URLS } from '../../xds/type-urls.js';
import { consistencyProblems, translate, type Translation } from '../translate/index.js';
import type { Mesh } from '../translate/mesh.js';
import { parseNode, type ProxyNode } from '../translate/node.js';
import { AdsStream, type DiscoveryRequestLike, type DiscoveryResponseLike, type SyncEvent } from './ads-stream.js';
import { encodeTranslation } from './encode.js';
import type { ProxyStatus } from './proxy-status.js';
import { EMPTY_SNAPSHOT, type XdsSnapshot } from './snapshot.js';

export interface ConnectedProxy {
  readonly node: ProxyNode;
  readonly stream: AdsStream;
  readonly status: ProxyStatus & { lastError?: string };
  snapshot: XdsSnapshot;
  translation: Translation | undefined;
}

/** Disconnected proxies stay in `/debug/syncz` for a while, so a crash is visible. */
const KEEP_DISCONNECTED = 100;

/** `sync` events: a proxy ACKed or NACKed a version. */
export interface ProxySyncEvent extends SyncEvent {
  readonly proxyId: string;
}

export class XdsServer {
  /** Emits `sync` (ProxySyncEvent) for every ACK and NACK. */
  readonly events = new EventEmitter();
  readonly #log: Logger;
  readonly #server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  readonly #proxies = new Map<number, ConnectedProxy>();
  readonly #gone: ProxyStatus[] = [];
  #mesh: Mesh;

  constructor(mesh: Mesh, log: Logger) {
    this.#mesh = mesh;
    this.#log = log;
    this.#server.addService(adsServiceDefinition() as unknown as grpc.ServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequestLike, DiscoveryResponseLike>) => this.#onStream(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'delta xDS is not supported yet; use state-of-the-world ADS' });
      },
    });
  }

  /** Binds `host:port` (port 0 picks one) and returns the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)));
    });
  }

  /** A new mesh: translate for every connected proxy and push what changed. */
  push(mesh: Mesh): void {
    this.#mesh = mesh;
    for (const proxy of this.#proxies.values()) {
      if (this.#refresh(proxy)) proxy.stream.push(proxy.snapshot);
    }
  }

  proxies(): readonly ConnectedProxy[] {
    return [...this.#proxies.values()];
  }

  statuses(): readonly ProxyStatus[] {
    return [...[...this.#proxies.values()].map((p) => p.status), ...this.#gone];
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.tryShutdown(() => resolve());
      // Streams stay open until their clients leave; don't wait for them.
      setImmediate(() => this.#server.forceShutdown());
    });
  }

  #onStream(call: grpc.ServerDuplexStream<DiscoveryRequestLike, DiscoveryResponseLike>): void {
    let proxy: ConnectedProxy | undefined;
    const stream = new AdsStream({
      wildcardTypes: new Set([TYPE_URLS.LISTENER, TYPE_URLS.CLUSTER]),
      pushOrder: PUSH_ORDER,
      send: (response) => call.write(response),
      onSync: (event) => {
        if (event.nack !== undefined) this.#log.warn('proxy rejected configuration (NACK)', { proxy: proxy?.node.id, type: event.typeUrl, version: event.version, message: event.nack });
        this.events.emit('sync', { ...event, proxyId: proxy?.node.id ?? '' } satisfies ProxySyncEvent);
      },
      onNode: (rawNode, s) => {
        const node = parseNode(rawNode);
        const status: ConnectedProxy['status'] = { streamId: s.id, proxyId: node.id, kind: node.kind, connectedAt: new Date().toISOString(), connected: true, types: {} };
        proxy = { node, stream: s, status, snapshot: EMPTY_SNAPSHOT, translation: undefined };
        this.#refresh(proxy);
        this.#proxies.set(s.id, proxy);
        s.attach(status, proxy.snapshot);
        this.#log.info('proxy connected', { proxy: node.id, kind: node.kind, namespace: node.namespace });
      },
    });
    call.on('data', (req: DiscoveryRequestLike) => {
      try {
        stream.onRequest(req);
      } catch (err) {
        this.#log.error('xDS request failed', { proxy: proxy?.node.id, err });
        call.destroy(err as Error);
      }
    });
    const done = (): void => {
      if (!this.#proxies.delete(stream.id) || proxy === undefined) return;
      proxy.status.connected = false;
      proxy.status.disconnectedAt = new Date().toISOString();
      this.#gone.unshift(proxy.status);
      this.#gone.length = Math.min(this.#gone.length, KEEP_DISCONNECTED);
      this.#log.info('proxy disconnected', { proxy: proxy.node.id });
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('close', done);
    call.on('cancelled', done);
  }

  /** Translates for one proxy; returns whether a new snapshot was published. */
  #refresh(proxy: ConnectedProxy): boolean {
    const t = translate(this.#mesh, proxy.node);
    const problems = consistencyProblems(t);
    const { snapshot, errors } = encodeTranslation(t);
    const all = [...problems, ...errors];
    if (all.length > 0) {
      proxy.status.lastError = all.join('; ');
      this.#log.error('translation not published: previous configuration keeps serving', { proxy: proxy.node.id, problems: all });
      return false;
    }
    delete proxy.status.lastError;
    proxy.snapshot = snapshot;
    proxy.translation = t;
    return true;
  }
}
