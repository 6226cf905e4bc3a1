/**
 * The proxy's xDS client: one Aggregated Discovery Service stream (state of the world)
 * to the control plane, over `@grpc/grpc-js`, with the client side of the protocol
 * (xds-notes.md "ADS protocol rules", Envoy's xDS protocol doc):
 *
 * - Subscriptions: LDS and CDS as wildcards (empty `resource_names`), RDS to every route
 *   configuration the accepted listeners name, EDS to every accepted EDS cluster
 *   (xds/subscriptions.ts). When accepted listeners or clusters change, a new request for
 *   RDS/EDS carries the full name list, the last accepted version and the last nonce.
 * - Every response is decoded and validated as a whole (xds/decode-response.ts). A bad
 *   one is NACKed (`version_info` = last accepted, its nonce, `error_detail` {code 3
 *   INVALID_ARGUMENT, message naming each resource and why}) and the type's previous
 *   resources keep serving (STYLE 10). A good one is stored, then ACKed (its version and
 *   nonce): LDS/CDS replace the whole type (missing = deleted); RDS/EDS replace the
 *   names the response carries. Names no longer subscribed are dropped at once.
 * - `node` goes on the first request of each stream only.
 * - Connection loss: `resources()` keeps returning the cached config; the client
 *   reconnects after a capped, jittered backoff (core/backoff.ts; reset after a stream
 *   that received at least one response) and re-sends every subscription with its last
 *   accepted version and an empty nonce, so an unchanged control plane need not resend.
 *
 * Updates (`onUpdate`): listeners are called synchronously, once per type whose stored
 * resources changed — each accepted response, and an RDS/EDS type that lost resources
 * because listeners/clusters stopped naming them — after the change is stored and ACKed.
 * Responses are handled one at a time in arrival order. Ordering a consumer can rely on:
 * the control plane pushes a change as CDS, EDS, LDS, RDS, so when a listener or route
 * update is emitted, the clusters of the same push have already been accepted (and
 * emitted). Endpoints of a cluster that is new in that push may still be in flight: the
 * EDS subscription for it is only sent once its cluster is accepted. A consumer treats
 * a route to a cluster it does not know yet, or one without endpoints, as having no
 * healthy upstream (Envoy's `NR`/`UH`), not as an error.
 *
 * The maps handed out are never mutated: an update swaps in a new map (STYLE 14), so a
 * consumer may keep the one it got. Decoded resources are shared, not copied; consumers
 * must not mutate them. Nothing here throws into the caller: stream errors, bad
 * responses and listener exceptions are logged.
 */
import * as grpc from '@grpc/grpc-js';
import { Backoff, type BackoffOptions } from '../core/backoff.js';
import { isoTime } from '../core/iso-time.js';
import type { Logger } from '../core/log.js';
import type { AggregatedDiscoveryServiceClient } from '../xds/generated/envoy/service/discovery/v3/AggregatedDiscoveryService.js';
import type { DiscoveryRequest } from '../xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js';
import type { DiscoveryResponse__Output } from '../xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js';
import type { Node } from '../xds/generated/envoy/config/core/v3/Node.js';
import { adsClientConstructor } from '../xds/protos.js';
import { PUSH_ORDER, TYPE_URLS } from '../xds/type-urls.js';
import { decodeResources, type ResourceValidator } from './xds/decode-response.js';
import { xdsNode, type XdsNodeOptions } from './xds/node.js';
import { endpointNames, routeConfigNames, WILDCARD_TYPES } from './xds/subscriptions.js';

export interface XdsClientOptions {
  /** The control plane's ADS address, `host:port` (e.g. "127.0.0.1:15010"); plaintext. */
  readonly server: string;
  /** Who this proxy is; `metadata` is plain JSON, sent as a google.protobuf.Struct. */
  readonly node: XdsNodeOptions;
  /**
   * Per type URL, validates (and may compile) one decoded resource; returns an error
   * message to NACK the whole response. Called before the update is accepted, once per
   * resource per response; a validator that throws rejects its resource.
   */
  readonly validate?: Partial<Record<string, ResourceValidator>>;
  readonly log: Logger;
  /** Reconnect backoff; defaults 1 s initial, ×1.6, ±20 % jitter, 30 s cap. */
  readonly backoff?: BackoffOptions;
}

export type XdsUpdateListener = (typeUrl: string, resources: ReadonlyMap<string, unknown>) => void;

export interface XdsTypeStatus {
  /** The last accepted version ('' before the first). */
  readonly version: string;
  /** The nonce of the last response of this type on the current stream ('' after a reconnect). */
  readonly nonce: string;
  /** Why the last response was NACKed; cleared when a later one is accepted. */
  readonly lastError?: string;
  /** When a response of this type was last accepted (ISO 8601). */
  readonly updatedAt?: string;
}

export interface XdsClientStatus {
  /** The current stream has received at least one response. */
  readonly connected: boolean;
  readonly types: Record<string, XdsTypeStatus>;
}

/** INVALID_ARGUMENT, the code Envoy and grpc-js-xds put in a NACK's `error_detail`. */
const NACK_CODE = grpc.status.INVALID_ARGUMENT;
/** A full-state CDS of a large mesh outgrows gRPC's 4 MB default; the control plane is trusted. */
const MAX_XDS_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * HTTP/2 keepalive pings on the ADS connection. Five minutes is the least interval that
 * gRPC servers' default enforcement (grpc-go `MinTime`) accepts without GOAWAY
 * "too_many_pings"; a dead control plane is noticed within about five and a half minutes.
 */
const KEEPALIVE_TIME_MS = 5 * 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;
const EMPTY: ReadonlyMap<string, unknown> = new Map();

interface TypeState {
  readonly typeUrl: string;
  /** Sorted names asked for; undefined = wildcard. */
  names: readonly string[] | undefined;
  version: string;
  nonce: string;
  resources: ReadonlyMap<string, unknown>;
  lastError: string | undefined;
  updatedAt: string | undefined;
  /** A request for this type went out on the current stream. */
  requested: boolean;
}

interface Stream {
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  responses: number;
  nodeSent: boolean;
}

export class XdsClient {
  readonly #options: XdsClientOptions;
  readonly #log: Logger;
  readonly #node: Node;
  readonly #backoff: Backoff;
  readonly #types = new Map<string, TypeState>();
  readonly #listeners = new Set<XdsUpdateListener>();
  #client: AggregatedDiscoveryServiceClient | undefined;
  #stream: Stream | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;

  constructor(options: XdsClientOptions) {
    this.#options = options;
    this.#log = options.log.child({ component: 'xds-client' });
    this.#node = xdsNode(options.node);
    this.#backoff = new Backoff(options.backoff);
    for (const typeUrl of PUSH_ORDER) {
      const names = WILDCARD_TYPES.has(typeUrl) ? undefined : [];
      this.#types.set(typeUrl, { typeUrl, names, version: '', nonce: '', resources: EMPTY, lastError: undefined, updatedAt: undefined, requested: false });
    }
  }

  /** Opens the stream and subscribes. Idempotent; does nothing after `close()`. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#connect();
  }

  /** Ends the stream and the channel; no reconnect, no more updates. Resolves at once. */
  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.call.cancel();
    this.#client?.close();
    this.#client = undefined;
    this.#listeners.clear();
    return Promise.resolve();
  }

  /** The last accepted resources of `typeUrl`, by name; empty for types never accepted. */
  resources(typeUrl: string): ReadonlyMap<string, unknown> {
    return this.#types.get(typeUrl)?.resources ?? EMPTY;
  }

  /** Calls `listener` after each stored change of a type (see the module comment); returns the unsubscribe function. */
  onUpdate(listener: XdsUpdateListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  status(): XdsClientStatus {
    const types: Record<string, XdsTypeStatus> = {};
    for (const st of this.#types.values()) {
      const s: { -readonly [K in keyof XdsTypeStatus]: XdsTypeStatus[K] } = { version: st.version, nonce: st.nonce };
      if (st.lastError !== undefined) s.lastError = st.lastError;
      if (st.updatedAt !== undefined) s.updatedAt = st.updatedAt;
      types[st.typeUrl] = s;
    }
    return { connected: (this.#stream?.responses ?? 0) > 0, types };
  }

  // ---- the stream ----

  #connect(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    let call: Stream['call'];
    try {
      this.#client ??= new (adsClientConstructor())(this.#options.server, grpc.credentials.createInsecure(), {
        // The channel's own reconnect backoff (default up to 120 s) must not outlast ours.
        'grpc.initial_reconnect_backoff_ms': this.#backoff.initialMs,
        'grpc.max_reconnect_backoff_ms': this.#backoff.maxMs,
        'grpc.max_receive_message_length': MAX_XDS_MESSAGE_BYTES,
        // A control plane that vanished without closing the connection (node failure)
        // would otherwise leave the stream silent forever.
        'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
        'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      });
      call = this.#client.StreamAggregatedResources();
    } catch (err) {
      this.#log.error('cannot open the ADS stream', { server: this.#options.server, err });
      this.#reconnectLater(false);
      return;
    }
    const stream: Stream = { call, responses: 0, nodeSent: false };
    this.#stream = stream;
    call.on('data', (response: DiscoveryResponse__Output) => {
      if (this.#stream !== stream) return;
      stream.responses++;
      this.#onResponse(response);
    });
    // 'status' follows every end of a call; 'error' (non-OK status) needs a listener or it throws.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      this.#log.warn('ADS stream closed: serving the cached configuration', { server: this.#options.server, code: grpc.status[status.code], details: status.details, responses: stream.responses });
      this.#reconnectLater(stream.responses > 0);
    });
    for (const typeUrl of PUSH_ORDER) {
      const st = this.#types.get(typeUrl) as TypeState;
      st.nonce = '';
      st.requested = false;
      if (st.names === undefined || st.names.length > 0) this.#send(st);
    }
  }

  #reconnectLater(streamWasHealthy: boolean): void {
    if (this.#closed) return;
    if (streamWasHealthy) this.#backoff.reset();
    const delayMs = this.#backoff.next();
    this.#log.info('reconnecting to the control plane', { server: this.#options.server, delayMs });
    this.#timer = setTimeout(() => this.#connect(), delayMs);
    this.#timer.unref();
  }

  /** A request for `st`'s type: ACK, subscription change, or (with `nackMessage`) NACK. */
  #send(st: TypeState, nackMessage?: string): void {
    const stream = this.#stream;
    if (stream === undefined) return;
    const request: DiscoveryRequest = {
      version_info: st.version,
      resource_names: st.names === undefined ? [] : [...st.names],
      type_url: st.typeUrl,
      response_nonce: st.nonce,
    };
    if (!stream.nodeSent) {
      request.node = this.#node;
      stream.nodeSent = true;
    }
    if (nackMessage !== undefined) request.error_detail = { code: NACK_CODE, message: nackMessage };
    st.requested = true;
    try {
      stream.call.write(request);
    } catch (err) {
      this.#log.error('cannot write to the ADS stream', { type: st.typeUrl, err }); // 'status' follows
    }
  }

  // ---- responses ----

  #onResponse(response: DiscoveryResponse__Output): void {
    const st = this.#types.get(response.type_url);
    if (st === undefined || !st.requested) {
      // Envoy ignores these too (GrpcMuxImpl: "no current subscribers").
      this.#log.warn('ignoring an xDS response of a type not subscribed to', { type: response.type_url });
      return;
    }
    st.nonce = response.nonce;
    const subscribed = st.names === undefined ? undefined : new Set(st.names);
    const outcome = decodeResources(st.typeUrl, response.resources ?? [], subscribed, this.#options.validate?.[st.typeUrl]);
    if (!outcome.ok) {
      st.lastError = outcome.error;
      this.#log.warn('rejected xDS response (NACK): the previous configuration keeps serving', { type: st.typeUrl, version: response.version_info, error: outcome.error });
      this.#send(st, outcome.error);
      return;
    }
    if (outcome.unrequested.length > 0) this.#log.debug('ignoring unrequested resources', { type: st.typeUrl, names: outcome.unrequested });
    const changed: TypeState[] = [st];
    st.resources = st.names === undefined ? outcome.resources : merge(st.resources, outcome.resources, subscribed);
    st.version = response.version_info;
    st.updatedAt = isoTime(Date.now());
    st.lastError = undefined;
    this.#send(st);
    this.#log.debug('accepted xDS response', { type: st.typeUrl, version: st.version, resources: st.resources.size });
    if (st.typeUrl === TYPE_URLS.LISTENER) this.#resubscribe(TYPE_URLS.ROUTE, routeConfigNames(st.resources.values()), changed);
    if (st.typeUrl === TYPE_URLS.CLUSTER) this.#resubscribe(TYPE_URLS.ENDPOINT, endpointNames(st.resources.values()), changed);
    for (const c of changed) this.#emit(c);
  }

  /** New names for a dependent type: drop what is no longer named, and ask for the new list. */
  #resubscribe(typeUrl: string, names: readonly string[], changed: TypeState[]): void {
    const st = this.#types.get(typeUrl) as TypeState;
    if (st.names !== undefined && sameNames(st.names, names)) return;
    st.names = names;
    const keep = new Set(names);
    if ([...st.resources.keys()].some((n) => !keep.has(n))) {
      st.resources = new Map([...st.resources].filter(([n]) => keep.has(n)));
      changed.push(st);
    }
    // An empty first request of a non-wildcard type reads as a wildcard to older servers:
    // send an empty list only to unsubscribe from names asked for on this stream.
    if (names.length > 0 || st.requested) this.#send(st);
  }

  #emit(st: TypeState): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(st.typeUrl, st.resources);
      } catch (err) {
        this.#log.error('an xDS update listener threw', { type: st.typeUrl, err });
      }
    }
  }
}

/** RDS/EDS: the previous resources still subscribed, with the response's replacing theirs. */
function merge(previous: ReadonlyMap<string, unknown>, incoming: ReadonlyMap<string, unknown>, subscribed: ReadonlySet<string> | undefined): ReadonlyMap<string, unknown> {
  const next = new Map<string, unknown>();
  for (const [name, r] of previous) if (subscribed === undefined || subscribed.has(name)) next.set(name, r);
  for (const [name, r] of incoming) next.set(name, r);
  return next;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
