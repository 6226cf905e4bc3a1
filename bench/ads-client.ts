/**
 * An ADS client for the benchmark, run as a child process so that its decoding does not
 * share the control plane's event loop or heap. It behaves like a proxyless gRPC client
 * (or a sidecar): LDS and CDS wildcard, RDS for the route names its listeners use, EDS for
 * its EDS clusters, and an ACK of every response with its version and nonce.
 *
 * Parent → child and child → parent messages go over the fork IPC channel. Times are
 * `wallMs()`, comparable across the two processes.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeAny } from '../src/xds/any.js';
import { adsClientConstructor, xdsRoot } from '../src/xds/protos.js';
import { TYPE_URLS } from '../src/xds/type-urls.js';
import { wallMs } from './stats.js';

export interface ClientNode {
  readonly id: string;
  /** `grpc` sends a gRPC user agent; `sidecar` declares TRELLIS_PROXY_TYPE. */
  readonly kind: 'grpc' | 'sidecar';
}

export type ToClient =
  | { readonly type: 'connect'; readonly address: string; readonly node: ClientNode }
  /** Report (`seen`) the first EDS response whose `cluster` has an endpoint at `address`. */
  | { readonly type: 'watch'; readonly id: number; readonly cluster: string; readonly address: string }
  | { readonly type: 'ping' }
  | { readonly type: 'close' };

export type FromClient =
  | { readonly type: 'synced'; readonly startedAt: number; readonly syncedAt: number; readonly responses: number; readonly resources: Readonly<Record<string, number>> }
  | { readonly type: 'seen'; readonly id: number; readonly at: number }
  | { readonly type: 'pong'; readonly at: number }
  | { readonly type: 'error'; readonly message: string };

interface TypeState {
  names: readonly string[];
  version: string;
  nonce: string;
  /** A request with new names was sent and its response has not come yet. */
  awaiting: boolean;
  received: boolean;
  count: number;
}

type Obj = Record<string, unknown>;
type Stream = ReturnType<InstanceType<ReturnType<typeof adsClientConstructor>>['StreamAggregatedResources']>;

// Load both proto sets now, while the parent checks the clock, not inside the timed connect.
const AdsClient = adsClientConstructor();
xdsRoot();

const TYPES = [TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT] as const;

function send(message: FromClient): void {
  process.send?.(message);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Every `route_config_name` in a decoded listener, unpacking nested Anys still in bytes. */
function routeNames(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) return value.forEach((v) => routeNames(v, out));
  if (!isObj(value)) return;
  if (typeof value.type_url === 'string' && value.value instanceof Uint8Array) {
    const inner = decodeAny<Obj>(value as { type_url: string; value: Buffer });
    if (inner.ok) routeNames(inner.value, out);
    return;
  }
  if (typeof value.route_config_name === 'string') out.add(value.route_config_name);
  for (const v of Object.values(value)) routeNames(v, out);
}

function edsNames(clusters: readonly Obj[]): string[] {
  const out: string[] = [];
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const serviceName = (c.eds_cluster_config as { service_name?: string } | undefined)?.service_name;
    out.push(serviceName !== undefined && serviceName !== '' ? serviceName : String(c.name));
  }
  return out.sort();
}

function hasAddress(cla: Obj, address: string): boolean {
  for (const locality of (cla.endpoints as Obj[] | undefined) ?? []) {
    for (const lb of (locality.lb_endpoints as Obj[] | undefined) ?? []) {
      const socket = ((lb.endpoint as Obj | undefined)?.address as Obj | undefined)?.socket_address as Obj | undefined;
      if (socket?.address === address) return true;
    }
  }
  return false;
}

class BenchAdsClient {
  readonly #client: grpc.Client & { StreamAggregatedResources(): Stream };
  readonly #stream: Stream;
  readonly #node: Obj;
  readonly #types = new Map<string, TypeState>();
  readonly #startedAt: number;
  #nodeSent = false;
  #synced = false;
  #responses = 0;
  #watch: Extract<ToClient, { type: 'watch' }> | undefined;
  #closing = false;

  constructor(address: string, node: ClientNode) {
    this.#startedAt = wallMs();
    this.#client = new AdsClient(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }) as unknown as grpc.Client & { StreamAggregatedResources(): Stream };
    const fields: Obj = { NAMESPACE: { stringValue: 'default' } };
    if (node.kind === 'sidecar') fields.TRELLIS_PROXY_TYPE = { stringValue: 'sidecar' };
    this.#node = { id: node.id, locality: {}, metadata: { fields }, ...(node.kind === 'grpc' ? { user_agent_name: 'gRPC Node Pure JS' } : {}) };
    for (const t of TYPES) this.#types.set(t, { names: [], version: '', nonce: '', awaiting: false, received: false, count: 0 });
    this.#stream = this.#client.StreamAggregatedResources();
    this.#stream.on('data', (r: Obj) => {
      try {
        this.#onResponse(r);
      } catch (err) {
        send({ type: 'error', message: (err as Error).stack ?? String(err) });
      }
    });
    this.#stream.on('error', (err: Error) => {
      if (!this.#closing) send({ type: 'error', message: `ADS stream failed: ${err.message}` });
    });
    this.#request(TYPE_URLS.LISTENER, []);
    this.#request(TYPE_URLS.CLUSTER, []);
  }

  watch(w: Extract<ToClient, { type: 'watch' }>): void {
    this.#watch = w;
  }

  close(): void {
    this.#closing = true;
    this.#stream.cancel();
    this.#client.close();
  }

  #state(typeUrl: string): TypeState {
    const st = this.#types.get(typeUrl);
    if (st === undefined) throw new Error(`unexpected type ${typeUrl}`);
    return st;
  }

  #write(typeUrl: string): void {
    const st = this.#state(typeUrl);
    const node = this.#nodeSent ? {} : { node: this.#node };
    this.#nodeSent = true;
    this.#stream.write({ ...node, type_url: typeUrl, resource_names: [...st.names], version_info: st.version, response_nonce: st.nonce });
  }

  #request(typeUrl: string, names: readonly string[]): void {
    const st = this.#state(typeUrl);
    st.names = names;
    st.awaiting = true;
    this.#write(typeUrl);
  }

  #onResponse(r: Obj): void {
    const at = wallMs();
    this.#responses++;
    const typeUrl = String(r.type_url);
    const st = this.#state(typeUrl);
    st.version = String(r.version_info);
    st.nonce = String(r.nonce);
    st.awaiting = false;
    st.received = true;
    const resources: Obj[] = [];
    for (const any of (r.resources as unknown[]) ?? []) {
      const d = decodeAny<Obj>(any as { type_url: string; value: Buffer }, typeUrl);
      if (!d.ok) throw new Error(d.error);
      resources.push(d.value);
    }
    st.count = resources.length;
    this.#write(typeUrl); // ACK
    if (typeUrl === TYPE_URLS.LISTENER) this.#follow(TYPE_URLS.ROUTE, [...resources.reduce((s, l) => (routeNames(l, s), s), new Set<string>())].sort());
    if (typeUrl === TYPE_URLS.CLUSTER) this.#follow(TYPE_URLS.ENDPOINT, edsNames(resources));
    if (typeUrl === TYPE_URLS.ENDPOINT) this.#checkWatch(resources, at);
    this.#checkSynced(at);
  }

  /** Subscribes to `names` of a type when they differ from the current subscription. */
  #follow(typeUrl: string, names: readonly string[]): void {
    const st = this.#state(typeUrl);
    if (st.names.length === names.length && st.names.every((n, i) => n === names[i])) return;
    this.#request(typeUrl, names);
  }

  #checkWatch(resources: readonly Obj[], at: number): void {
    const w = this.#watch;
    if (w === undefined) return;
    const cla = resources.find((c) => c.cluster_name === w.cluster);
    if (cla === undefined || !hasAddress(cla, w.address)) return;
    this.#watch = undefined;
    send({ type: 'seen', id: w.id, at });
  }

  #checkSynced(at: number): void {
    if (this.#synced) return;
    for (const t of TYPES) {
      const st = this.#state(t);
      const needed = t === TYPE_URLS.LISTENER || t === TYPE_URLS.CLUSTER || st.names.length > 0;
      if (st.awaiting || (needed && !st.received)) return;
    }
    this.#synced = true;
    const resources = Object.fromEntries(TYPES.map((t) => [t.slice(t.lastIndexOf('.') + 1), this.#state(t).count]));
    send({ type: 'synced', startedAt: this.#startedAt, syncedAt: at, responses: this.#responses, resources });
  }
}

let client: BenchAdsClient | undefined;

process.on('message', (m: ToClient) => {
  try {
    if (m.type === 'connect') client = new BenchAdsClient(m.address, m.node);
    else if (m.type === 'watch') client?.watch(m);
    else if (m.type === 'ping') send({ type: 'pong', at: wallMs() });
    else {
      client?.close();
      process.disconnect?.();
    }
  } catch (err) {
    send({ type: 'error', message: (err as Error).stack ?? String(err) });
  }
});
process.on('disconnect', () => client?.close());
