/**
 * One Aggregated Discovery Service stream, state of the world, without the transport:
 * requests in, responses out through `send`. Protocol rules (xds-notes.md, Envoy's
 * xDS protocol doc):
 * - `node` comes with the first request only.
 * - A request whose `response_nonce` is not the last one sent for its type is stale and
 *   ignored. ACK or NACK is decided by `error_detail`, never by comparing versions.
 * - A NACK is recorded; the rejected version is not sent again, a newer one is.
 * - A change of subscribed names is answered even when the version is unchanged.
 * - LDS and CDS are full-state (every requested resource in each response); an empty
 *   name list on them is a wildcard subscription.
 * - Pushes go out CDS, EDS, LDS, RDS, so clusters exist before the routes that use them.
 */
import type { NackInfo, ProxyStatus, TypeSyncStatus } from './proxy-status.js';
import { type EncodedResource, type XdsSnapshot, typeSnapshot } from './snapshot.js';

export interface DiscoveryRequestLike {
  readonly version_info?: string;
  readonly node?: NodeLike | null;
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: { readonly code?: number; readonly message?: string } | null;
}

export interface NodeLike {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: unknown;
  readonly locality?: unknown;
  readonly user_agent_name?: string;
}

export interface DiscoveryResponseLike {
  readonly version_info: string;
  readonly resources: readonly EncodedResource['any'][];
  readonly type_url: string;
  readonly nonce: string;
}

export interface AdsStreamOptions {
  /** Type URLs whose empty subscription means "everything" (LDS and CDS). */
  readonly wildcardTypes: ReadonlySet<string>;
  /** Push order across types. */
  readonly pushOrder: readonly string[];
  /** Called once, on the first request, to learn the snapshot for this node. */
  readonly onNode: (node: NodeLike, stream: AdsStream) => void;
  readonly send: (response: DiscoveryResponseLike) => void;
  /** Called for every ACK and NACK, after the status is updated. */
  readonly onSync?: (event: SyncEvent) => void;
  readonly now?: () => Date;
}

/** An ACK (no `nack`) or a NACK (with the client's message) of a version of one type. */
export interface SyncEvent {
  readonly typeUrl: string;
  readonly version: string;
  readonly nack?: string;
}

interface TypeState {
  /** undefined = wildcard. */
  names: ReadonlySet<string> | undefined;
  sentVersion: string | undefined;
  sentNonce: string | undefined;
  /** The sent version was NACKed: do not send it again. */
  nackedVersion: string | undefined;
}

let nextStreamId = 1;

export class AdsStream {
  readonly id = nextStreamId++;
  readonly #options: AdsStreamOptions;
  readonly #types = new Map<string, TypeState>();
  #snapshot: XdsSnapshot | undefined;
  #nonce = 0;
  #status: ProxyStatus | undefined;

  constructor(options: AdsStreamOptions) {
    this.#options = options;
  }

  get status(): ProxyStatus | undefined {
    return this.#status;
  }

  /** Set by the server once the node is known; the status object is kept up to date. */
  attach(status: ProxyStatus, snapshot: XdsSnapshot): void {
    this.#status = status;
    this.#snapshot = snapshot;
  }

  onRequest(req: DiscoveryRequestLike): void {
    if (this.#snapshot === undefined) {
      this.#options.onNode(req.node ?? {}, this);
      if (this.#snapshot === undefined) return;
    }
    const typeUrl = req.type_url ?? '';
    if (typeUrl === '') return;
    let st = this.#types.get(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (st !== undefined && nonce !== '' && nonce !== st.sentNonce) return; // stale
    if (st === undefined) {
      st = { names: undefined, sentVersion: undefined, sentNonce: undefined, nackedVersion: undefined };
      this.#types.set(typeUrl, st);
    }
    const status = this.#typeStatus(typeUrl);
    if (nonce !== '' && req.error_detail != null) {
      st.nackedVersion = st.sentVersion;
      const nack: NackInfo = { version: st.sentVersion ?? '', nonce, message: req.error_detail.message ?? '', at: this.#now() };
      status.lastNack = nack;
      this.#options.onSync?.({ typeUrl, version: nack.version, nack: nack.message });
    } else if (nonce !== '') {
      status.ackedVersion = st.sentVersion;
      status.ackedAt = this.#now();
      this.#options.onSync?.({ typeUrl, version: st.sentVersion ?? '' });
    }
    const requested = req.resource_names ?? [];
    const names = requested.length === 0 && this.#options.wildcardTypes.has(typeUrl) ? undefined : new Set(requested);
    const namesChanged = !sameNames(st.names, names) || st.sentNonce === undefined;
    st.names = names;
    status.subscribed = names === undefined ? ['*'] : [...names].sort();
    const current = typeSnapshot(this.#snapshot, typeUrl).version;
    if (namesChanged || (current !== st.sentVersion && current !== st.nackedVersion)) this.#respond(typeUrl, st);
  }

  /** A new snapshot for this proxy: send every subscribed type whose version changed. */
  push(snapshot: XdsSnapshot): void {
    this.#snapshot = snapshot;
    for (const typeUrl of this.#options.pushOrder) {
      const st = this.#types.get(typeUrl);
      if (st === undefined || st.sentNonce === undefined) continue;
      const version = typeSnapshot(snapshot, typeUrl).version;
      if (version !== st.sentVersion && version !== st.nackedVersion) this.#respond(typeUrl, st);
    }
  }

  #respond(typeUrl: string, st: TypeState): void {
    const ts = typeSnapshot(this.#snapshot as XdsSnapshot, typeUrl);
    const resources: EncodedResource['any'][] = [];
    if (st.names === undefined) {
      for (const r of ts.resources.values()) resources.push(r.any);
    } else {
      for (const name of st.names) {
        const r = ts.resources.get(name);
        if (r !== undefined) resources.push(r.any);
      }
    }
    const nonce = `${this.id}-${++this.#nonce}`;
    st.sentVersion = ts.version;
    st.sentNonce = nonce;
    if (ts.version !== st.nackedVersion) st.nackedVersion = undefined;
    const status = this.#typeStatus(typeUrl);
    status.sentVersion = ts.version;
    status.sentNonce = nonce;
    status.sentAt = this.#now();
    this.#options.send({ version_info: ts.version, resources, type_url: typeUrl, nonce });
  }

  #typeStatus(typeUrl: string): TypeSyncStatus {
    const types = this.#status?.types ?? {};
    let s = types[typeUrl];
    if (s === undefined) {
      s = { subscribed: [] };
      types[typeUrl] = s;
    }
    return s;
  }

  #now(): string {
    return (this.#options.now?.() ?? new Date()).toISOString();
  }
}

function sameNames(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}
